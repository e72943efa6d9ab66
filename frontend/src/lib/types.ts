export type Role = "customer" | "batch" | "ops" | "reverser";

export interface Me {
  id: string;
  username: string;
  role: Role | string;
}

export interface Account {
  id: string;
  currency: string;
  /** The ledger balance: every committed entry. */
  balance: string;
  /** balance - active holds (servers with holds only). */
  available?: string;
  /** The active holds' sum (servers with holds only). */
  held?: string;
  overdraft_limit: string;
  created_at: string;
  version: number;
}

export interface Entry {
  id: string | number;
  transfer_id: string;
  account_id: string;
  amount: string;
  balance_after: string;
  currency: string;
  created_at: string;
}

export type TransferStatus = "pending" | "committed" | "rejected";

export interface Transfer {
  id: string;
  status: TransferStatus | string;
  reason?: string | null;
  from_account: string;
  to_account: string;
  amount: string;
  currency: string;
  reference?: string | null;
  created_at: string;
  committed_at?: string | null;
  /** A reversal: the transfer it reverses. */
  reverses?: string | null;
  reversal_reason?: string | null;
  /** An original: its reversals (in `GET /v1/transfers/{id}`). */
  reversals?: ReversalRef[] | null;
  reversed_amount?: string | null;
  /** A hold's capture: the hold it captured. */
  hold_id?: string | null;
}

export interface ReversalRef {
  id: string;
  amount: string;
  status: string;
  created_at: string;
}

export interface BalanceAsOf {
  account_id: string;
  currency: string;
  as_of: string;
  balance: string;
}

export interface StatementEntry {
  entry_id: number;
  transfer_id: string;
  created_at: string;
  amount: string;
  running_balance: string;
  counterparty_account?: string | null;
  reference?: string | null;
}

export interface Statement {
  account_id: string;
  currency: string;
  from: string;
  to: string;
  opening_balance: string;
  closing_balance: string;
  total_debits: string;
  total_credits: string;
  entry_count: number;
  entries: StatementEntry[];
}

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

export interface TransferBody {
  from_account: string;
  to_account: string;
  amount: string;
  currency: string;
  reference?: string;
}

export interface Problem {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  errors?: { field: string; message: string; line?: number | null }[];
}

// ---- ops role (GET /v1/ops/...) ----

export interface OpsTransfer {
  id: string;
  status: "committed" | "rejected" | string;
  reason?: string | null;
  from_account: string;
  to_account: string;
  amount: string;
  currency: string;
  created_at: string;
  processed_at: string;
  trace_id: string | null;
  publish_ms: number | null;
  queue_ms: number | null;
  apply_ms: number | null;
  total_ms: number;
  /** A reversal: the original it reverses (servers with reversals). */
  reverses?: string | null;
  /** A hold's capture: the hold (servers with holds). */
  hold_id?: string | null;
}

export interface Percentiles {
  p50: number;
  p90: number;
  p99: number;
}

export type StatsStage = "publish" | "queue" | "apply" | "end_to_end";

export interface OpsStats {
  window_seconds: number;
  transfers: number;
  committed: number;
  rejected: number;
  per_second: number;
  latency_ms: Partial<Record<StatsStage, Percentiles | null>>;
}

export interface TimelineStage {
  stage: "accepted" | "published" | "received" | "committed" | "rejected" | "notified" | string;
  at: string;
  ms_since_previous: number | null;
}

export interface Timeline {
  id: string;
  status: string;
  reason?: string | null;
  trace_id: string | null;
  stages: TimelineStage[];
  total_ms: number | null;
  reverses?: string | null;
  reversal_reason?: string | null;
  hold_id?: string | null;
}

// ---- batch role (/v1/batches) ----

export type BatchMode = "independent" | "atomic";

export interface BatchAccepted {
  id: string;
  count: number;
  mode: BatchMode | string;
}

export interface BatchTotal {
  currency: string;
  committed: string;
  rejected: string;
}

export interface Batch {
  id: string;
  mode: BatchMode | string;
  count: number;
  pending: number;
  committed: number;
  rejected: number;
  totals: BatchTotal[];
  created_at: string;
  done: boolean;
}

export interface BatchPayment {
  line: number;
  id: string;
  status: "pending" | "committed" | "rejected" | string;
  reason?: string | null;
  from_account?: string;
  to_account?: string;
  amount?: string;
  currency?: string;
  reference?: string | null;
}
