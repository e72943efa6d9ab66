import { formatMoney } from "../lib/money";
import type { LiveData } from "../lib/useLiveData";

const isZero = (amount: string) => /^-?0*(\.0*)?$/.test(amount);

export function AccountsPanel({ live }: { live: LiveData }) {
  const { accounts, accountsError } = live;
  return (
    <section className="panel accounts" aria-labelledby="accounts-title">
      <h2 id="accounts-title">Your accounts</h2>
      {accountsError && (
        <div className="error-box" role="alert">
          <p>Could not load accounts: {accountsError}</p>
          <button type="button" onClick={() => void live.refreshAccounts()}>Try again</button>
        </div>
      )}
      {accounts === null && !accountsError && <p className="muted" role="status">Loading accounts…</p>}
      {accounts !== null && accounts.length === 0 && <p className="empty">You have no accounts yet.</p>}
      {accounts !== null && accounts.length > 0 && (
        <ul className="account-list">
          {accounts.map((a) => (
            <li key={a.id} className="account-card" data-testid="account-card" data-account-id={a.id}>
              <div className="account-head">
                <span className="currency-badge">{a.currency}</span>
                <span className="account-id mono" title={a.id}>{a.id}</span>
              </div>
              <p className="balance">
                <span className="sr-only">Balance: </span>
                <span data-testid="account-balance" data-value={a.balance} data-version={a.version}>
                  {formatMoney(a.balance, a.currency)}
                </span>
              </p>
              {a.available != null && (
                // With holds, what can be spent differs from the ledger balance.
                <p className="small available">
                  Available{" "}
                  <strong data-testid="account-available" data-value={a.available}>
                    {formatMoney(a.available, a.currency)}
                  </strong>
                  {a.held && !isZero(a.held) && (
                    <span className="muted" data-testid="account-held" data-value={a.held}>
                      {" "}· {formatMoney(a.held, a.currency)} on hold
                    </span>
                  )}
                </p>
              )}
              {a.overdraft_limit && !isZero(a.overdraft_limit) && (
                <p className="muted small">Overdraft up to {formatMoney(a.overdraft_limit, a.currency)}</p>
              )}
              <a href={`#/accounts/${a.id}`} className="link">
                History<span className="sr-only"> of the {a.currency} account {a.id}</span>
              </a>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
