import { useCallback, useEffect, useState } from "react";
import { api, ApiError, problemMessage } from "./lib/api";
import { clearToken, loadToken, onTokenChange, tokenExpiresAt } from "./lib/auth";
import type { Me } from "./lib/types";
import { Login } from "./components/Login";
import { Shell } from "./components/Shell";

export function App() {
  const [token, setToken] = useState<string | null>(() => loadToken());
  const [me, setMe] = useState<Me | null>(null);
  const [meError, setMeError] = useState<string | null>(null);
  const [signedOutReason, setSignedOutReason] = useState<string | null>(null);

  useEffect(
    () =>
      onTokenChange(() => {
        const t = loadToken();
        setToken((prev) => {
          if (prev && !t) setSignedOutReason("Your session ended. Please sign in again.");
          return t;
        });
      }),
    [],
  );

  // Sign out when the token expires, rather than on the next failing request.
  useEffect(() => {
    const at = token ? tokenExpiresAt() : null;
    if (at === null) return;
    const timer = window.setTimeout(() => clearToken(), Math.min(Math.max(0, at - Date.now()), 2 ** 31 - 1));
    return () => window.clearTimeout(timer);
  }, [token]);

  const loadMe = useCallback(() => {
    setMeError(null);
    api.me().then(setMe, (e) => {
      if (!(e instanceof ApiError && e.status === 401)) setMeError(problemMessage(e));
    });
  }, []);

  useEffect(() => {
    setMe(null);
    if (token) loadMe();
  }, [token, loadMe]);

  const logout = useCallback(() => {
    clearToken();
    setSignedOutReason("You are signed out.");
    setMe(null);
    if (window.location.hash) window.location.hash = "";
  }, []);

  if (!token) {
    return (
      <Login
        notice={signedOutReason}
        onSignedIn={() => {
          setSignedOutReason(null);
          setToken(loadToken());
        }}
      />
    );
  }
  if (!me) {
    return (
      <main className="center-page">
        {meError ? (
          <div className="panel" role="alert">
            <h1>Cannot load your profile</h1>
            <p>{meError}</p>
            <div className="row">
              <button type="button" onClick={loadMe}>Try again</button>
              <button type="button" className="secondary" onClick={logout}>Sign out</button>
            </div>
          </div>
        ) : (
          <p className="muted" role="status">Loading…</p>
        )}
      </main>
    );
  }
  return <Shell me={me} onLogout={logout} />;
}
