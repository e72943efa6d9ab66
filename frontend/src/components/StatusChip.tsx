import { reasonWords, statusWords } from "../lib/reasons";

export function StatusChip({ status }: { status: string }) {
  const known = status === "pending" || status === "committed" || status === "rejected";
  return (
    <span className={`chip chip-${known ? status : "other"}`} data-testid="status-chip" data-status={status}>
      {statusWords(status)}
    </span>
  );
}

export function ReasonText({ reason }: { reason?: string | null }) {
  return (
    <span className="reason" data-testid="reject-reason" data-reason={reason ?? ""}>
      {reasonWords(reason)}
    </span>
  );
}
