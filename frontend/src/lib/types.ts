export type Role = "customer" | "batch" | "ops";

export interface Me {
  id: string;
  username: string;
  role: Role | string;
}

export interface Account {
  id: string;
  currency: string;
  balance: string;
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
  errors?: { field: string; message: string }[];
}
