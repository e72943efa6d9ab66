import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { api, ApiError, problemMessage, resolveWsUrl } from "./api";
import { loadToken, onTokenChange } from "./auth";
import { LiveConnection, type LiveStatus } from "./live";
import { applyAccount, mergeAccounts, mergeTransfers, upsertTransfer } from "./store";
import { upsertHold, type Hold } from "./holds";
import type { Account, Transfer } from "./types";

const PAGE = 20;
const POLL_MS = 5000;

export interface LiveData {
  accounts: Account[] | null;
  accountsError: string | null;
  transfers: Transfer[] | null;
  transfersError: string | null;
  transfersCursor: string | null;
  loadingMore: boolean;
  status: LiveStatus;
  online: boolean;
  /** Bumps on every resync so views with their own data (history) refetch too. */
  resyncCount: number;
  refreshAccounts: () => Promise<void>;
  refreshTransfers: () => Promise<void>;
  loadMoreTransfers: () => Promise<void>;
  addTransfer: (t: Transfer) => void;
  /** Holds as the live stream last described them (`hold.updated`), newest first. */
  liveHolds: Hold[];
  addHold: (h: Hold) => void;
}

export function useLiveData(): LiveData {
  const [accounts, setAccounts] = useState<Account[] | null>(null);
  const [accountsError, setAccountsError] = useState<string | null>(null);
  const [transfers, setTransfers] = useState<Transfer[] | null>(null);
  const [transfersError, setTransfersError] = useState<string | null>(null);
  const [transfersCursor, setCursor] = useState<string | null>(null);
  const [loadingMore, setLoadingMore] = useState(false);
  const [status, setStatus] = useState<LiveStatus>("connecting");
  const [online, setOnline] = useState(() => (typeof navigator === "undefined" ? true : navigator.onLine));
  const [resyncCount, setResyncCount] = useState(0);
  const [liveHolds, setLiveHolds] = useState<Hold[]>([]);
  const firstPageLoaded = useRef(false);

  const refreshAccounts = useCallback(async () => {
    try {
      const fresh = await api.accounts();
      setAccounts((cur) => mergeAccounts(cur ?? [], fresh));
      setAccountsError(null);
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 401)) setAccountsError(problemMessage(e));
    }
  }, []);

  const refreshTransfers = useCallback(async () => {
    try {
      const page = await api.transfers(null, PAGE);
      setTransfers((cur) => mergeTransfers(cur ?? [], page.items));
      if (!firstPageLoaded.current) {
        firstPageLoaded.current = true;
        setCursor(page.next_cursor);
      }
      setTransfersError(null);
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 401)) setTransfersError(problemMessage(e));
    }
  }, []);

  const loadMoreTransfers = useCallback(async () => {
    if (!transfersCursor) return;
    setLoadingMore(true);
    try {
      const page = await api.transfers(transfersCursor, PAGE);
      setTransfers((cur) => mergeTransfers(cur ?? [], page.items));
      setCursor(page.next_cursor);
      setTransfersError(null);
    } catch (e) {
      setTransfersError(problemMessage(e));
    } finally {
      setLoadingMore(false);
    }
  }, [transfersCursor]);

  const addTransfer = useCallback((t: Transfer) => {
    setTransfers((cur) => upsertTransfer(cur ?? [], t));
  }, []);

  const addHold = useCallback((h: Hold) => {
    setLiveHolds((cur) => upsertHold(cur, h));
  }, []);

  // Initial load (the page shows data even when the live stream is down).
  useEffect(() => {
    void refreshAccounts();
    void refreshTransfers();
  }, [refreshAccounts, refreshTransfers]);

  // The live stream.
  useEffect(() => {
    let conn: LiveConnection | null = null;
    let cancelled = false;
    const resync = () => {
      void refreshAccounts();
      void refreshTransfers();
      setResyncCount((n) => n + 1);
    };
    const start = (wsUrl: string) => {
      if (cancelled) return;
      conn = new LiveConnection({
        url: wsUrl,
        token: loadToken, // read at every (re)connect: always the current token
        onStatus: setStatus,
        onResync: resync,
        onEvent: (e) => {
          if (e.type === "account.updated") setAccounts((cur) => applyAccount(cur ?? [], e.account));
          else if (e.type === "transfer.updated") setTransfers((cur) => upsertTransfer(cur ?? [], e.transfer));
          else if (e.type === "hold.updated") {
            setLiveHolds((cur) => upsertHold(cur, e.hold));
            // A hold changes what is available, which the accounts show.
            void refreshAccounts();
          }
        },
        // Repeated failures before the socket opens: maybe the token was
        // refused. /v1/me answers 401 then, which refreshes it (the next
        // connect uses the new one) or, failing that, signs out.
        onConnectFailures: () => void api.me().catch(() => undefined),
        isOnline: () => navigator.onLine,
      });
      conn.start();
    };
    api
      .config()
      .then((c) => start(resolveWsUrl(c?.ws_url, window.location)))
      .catch(() => start(resolveWsUrl(null, window.location)));
    const goOnline = () => {
      setOnline(true);
      conn?.online();
      resync();
    };
    const goOffline = () => {
      setOnline(false);
      conn?.offline();
    };
    window.addEventListener("online", goOnline);
    window.addEventListener("offline", goOffline);
    const offToken = onTokenChange(() => {
      if (loadToken()) conn?.tokenChanged();
    });
    return () => {
      cancelled = true;
      offToken();
      window.removeEventListener("online", goOnline);
      window.removeEventListener("offline", goOffline);
      conn?.stop();
    };
  }, [refreshAccounts, refreshTransfers]);

  // Fallback while the stream is down: poll what is still pending.
  const pendingIds = useMemo(
    () => (transfers ?? []).filter((t) => t.status === "pending").map((t) => t.id).slice(0, 5).join(","),
    [transfers],
  );
  useEffect(() => {
    if (status === "connected" || !pendingIds || !online) return;
    const timer = window.setInterval(() => {
      for (const id of pendingIds.split(",")) {
        api.transfer(id).then((t) => setTransfers((cur) => upsertTransfer(cur ?? [], t)), () => undefined);
      }
      void refreshAccounts();
    }, POLL_MS);
    return () => window.clearInterval(timer);
  }, [status, pendingIds, online, refreshAccounts]);

  return {
    accounts,
    accountsError,
    transfers,
    transfersError,
    transfersCursor,
    loadingMore,
    status,
    online,
    resyncCount,
    refreshAccounts,
    refreshTransfers,
    loadMoreTransfers,
    addTransfer,
    liveHolds,
    addHold,
  };
}
