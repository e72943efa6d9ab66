import { useEffect, useState } from "react";
import type { Me } from "../lib/types";
import { useLiveData } from "../lib/useLiveData";
import { ConnectionIndicator } from "./ConnectionIndicator";
import { AccountsPanel } from "./AccountsPanel";
import { TransferForm } from "./TransferForm";
import { TransfersPanel } from "./TransfersPanel";
import { AccountHistory } from "./AccountHistory";
import { BatchPanel } from "./RolePanels";
import { OpsFlow } from "./OpsFlow";
import { TransferDetail } from "./TransferDetail";
import { HoldsPanel } from "./HoldsPanel";
import { ReversalPanel } from "./ReversalPanel";
import { OpsHolds } from "./OpsHolds";

function useHashRoute(): string {
  const [hash, setHash] = useState(() => window.location.hash);
  useEffect(() => {
    const on = () => setHash(window.location.hash);
    window.addEventListener("hashchange", on);
    return () => window.removeEventListener("hashchange", on);
  }, []);
  return hash;
}

export function Shell({ me, onLogout }: { me: Me; onLogout: () => void }) {
  const live = useLiveData();
  const hash = useHashRoute();
  const historyMatch = /^#\/accounts\/([0-9a-fA-F-]{36})$/.exec(hash);
  const transferMatch = /^#\/transfers\/([0-9a-fA-F-]{36})$/.exec(hash);
  const role = me.role;

  return (
    <div className="app">
      <a
        className="skip-link"
        href="#main"
        onClick={(e) => {
          // Hash routes: focus the content instead of changing the route.
          e.preventDefault();
          document.getElementById("main")?.focus();
        }}
      >
        Skip to content
      </a>
      <header className="topbar">
        <a className="brand" href="#/">Transfers</a>
        <div className="topbar-right">
          <ConnectionIndicator status={live.status} online={live.online} />
          <span className="user" data-testid="current-user">
            {me.username}
            {role !== "customer" && <span className="role-tag">{role}</span>}
          </span>
          <button type="button" className="secondary" onClick={onLogout}>
            Sign out
          </button>
        </div>
      </header>
      {!live.online && (
        <div className="banner warn" role="status">
          You are offline. Showing the last known data; it will update when you are back online.
        </div>
      )}
      <main id="main" tabIndex={-1}>
        {transferMatch ? (
          <TransferDetail id={transferMatch[1].toLowerCase()} resyncCount={live.resyncCount} />
        ) : historyMatch ? (
          <AccountHistory
            accountId={historyMatch[1].toLowerCase()}
            accounts={live.accounts}
            resyncCount={live.resyncCount}
          />
        ) : role === "ops" ? (
          <>
            <section className="panel" aria-labelledby="ops-title">
              <h1 id="ops-title">Operations</h1>
              <p className="muted">
                Every transfer of every user as it flows through the system: throughput and latency per stage,
                the latest transfers with their stage timings, and each one's timeline and trace id.
              </p>
            </section>
            <OpsFlow />
            <OpsHolds live={live} />
            <TransfersPanel live={live} title="Recent transfers" />
          </>
        ) : role === "reverser" ? (
          <>
            <ReversalPanel />
            <TransfersPanel live={live} title="Transfers" />
          </>
        ) : role === "batch" ? (
          <>
            <BatchPanel ownAccounts={(live.accounts ?? []).map((a) => a.id)} />
            <AccountsPanel live={live} />
            <TransfersPanel live={live} title="Transfers" />
          </>
        ) : (
          <div className="dashboard">
            <AccountsPanel live={live} />
            <TransferForm live={live} />
            <HoldsPanel live={live} />
            <TransfersPanel live={live} title="Transfers" />
          </div>
        )}
      </main>
    </div>
  );
}
