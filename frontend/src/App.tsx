import { useCallback, useEffect, useState } from "react";
import { api, ApiError, problemMessage } from "./lib/api";
import { hasSession, onTokenChange } from "./lib/auth";
import { keepSessionFresh, signOut } from "./lib/session";
import type { Me } from "./lib/types";
import { Login } from "./components/Login";
import { Shell } from "./components/Shell";

export function App() {
  // Signed in, not the token itself: the token changes at every refresh and
  // that must not reload the profile or remount the page.
  const [signedIn, setSignedIn] = useState<boolean>(() => hasSession());
  const [me, setMe] = useState<Me | null>(null);
  const [meError, setMeError] = useState<string | null>(null);
  const [signedOutReason, setSignedOutReason] = useState<string | null>(null);

  useEffect(
    () =>
      onTokenChange(() => {
        const now = hasSession();
        setSignedIn((prev) => {
          if (prev && !now) setSignedOutReason("Your session ended. Please sign in again.");
          return now;
        });
      }),
    [],
  );

  // Refresh the access token before it expires; sign out when there is
  // nothing left to refresh it with (or the gateway refuses).
  useEffect(() => keepSessionFresh(), []);

  const loadMe = useCallback(() => {
    setMeError(null);
    api.me().then(setMe, (e) => {
      if (!(e instanceof ApiError && e.status === 401)) setMeError(problemMessage(e));
    });
  }, []);

  useEffect(() => {
    setMe(null);
    if (signedIn) loadMe();
  }, [signedIn, loadMe]);

  const logout = useCallback(() => {
    // Signed out at once; revoking the login at the gateway is best effort.
    void signOut();
    setSignedOutReason("You are signed out.");
    setMe(null);
    if (window.location.hash) window.location.hash = "";
  }, []);

  if (!signedIn) {
    return (
      <Login
        notice={signedOutReason}
        onSignedIn={() => {
          setSignedOutReason(null);
          setSignedIn(hasSession());
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
