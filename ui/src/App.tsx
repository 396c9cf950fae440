import { useEffect, useState } from "react";
import { BrowserRouter, Navigate, NavLink, Route, Routes, useLocation, useNavigate } from "react-router-dom";
import { endedAt, returnPath, sessionOf, signIn, signOut, userManager, type Session } from "./auth";
import { SessionContext } from "./components";
import { AccountPage } from "./pages/Account";
import { AuditPage, VerifyPage } from "./pages/Audit";
import { ClientPage } from "./pages/Client";
import { ErasePage } from "./pages/Erase";
import { ClientsPage, OnboardPage } from "./pages/Clients";
import { StaffPage, SystemLogPage } from "./pages/Staff";
import { StatementPage } from "./pages/Statement";

/** The screens each role may use, first one being its home. */
const MENUS: Record<Session["role"], [string, string][]> = {
  agent: [["/clients", "Clients"], ["/clients/new", "Onboard"]],
  admin: [["/staff", "Staff"], ["/system-log", "System log"], ["/erase", "Erasure"]],
  "root-admin": [["/staff", "Administrators"], ["/system-log", "System log"], ["/erase", "Erasure"]],
  auditor: [["/audit", "Audit"], ["/verify", "Integrity"], ["/clients", "Clients"]],
  worker: [],
};

export function App() {
  return (
    <BrowserRouter>
      <Routes>
        <Route path="/callback" element={<Callback />} />
        <Route path="*" element={<Shell />} />
      </Routes>
    </BrowserRouter>
  );
}

function Callback() {
  const navigate = useNavigate();
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    userManager
      .signinRedirectCallback()
      .then((user) => navigate(returnPath(user.state), { replace: true }))
      .catch((e) => setError(String(e)));
  }, [navigate]);
  return <main className="centered">{error ? <p role="alert">Sign-in failed: {error}</p> : <p aria-busy="true">Signing in…</p>}</main>;
}

function Shell() {
  const location = useLocation();
  const [session, setSession] = useState<Session | null | undefined>(undefined);
  useEffect(() => {
    const update = () => userManager.getUser().then((user) => setSession(user && !user.expired ? sessionOf(user) : null));
    update();
    userManager.events.addUserLoaded(update);
    userManager.events.addUserUnloaded(update);
    return () => {
      userManager.events.removeUserLoaded(update);
      userManager.events.removeUserUnloaded(update);
    };
  }, []);
  if (session === undefined) return <main className="centered" aria-busy="true">Loading…</main>;
  if (session === null) return <SignIn />;
  const menu = MENUS[session.role];
  return (
    <SessionContext.Provider value={session}>
      <header className="topbar">
        <span className="brand">Ledgerline</span>
        <nav aria-label="Main">
          {menu.map(([path, label]) => (
            <NavLink key={path} to={path} end>
              {label}
            </NavLink>
          ))}
        </nav>
        <span className="who">
          {session.username} · {session.role}
        </span>
        <button type="button" onClick={signOut}>
          Sign out
        </button>
      </header>
      <ExpiryWarning />
      {/* A new page starts afresh: no message or typed value from the last one stays. */}
      <main key={location.pathname}>
        <Routes>
          {session.role === "agent" && (
            <>
              <Route path="/clients/new" element={<OnboardPage />} />
              <Route path="/clients/:id" element={<ClientPage />} />
              <Route path="/accounts/:id" element={<AccountPage />} />
            </>
          )}
          {(session.role === "agent" || session.role === "auditor") && (
            <>
              <Route path="/clients" element={<ClientsPage />} />
              <Route path="/accounts/:id/statement" element={<StatementPage />} />
            </>
          )}
          {session.role === "auditor" && (
            <>
              <Route path="/clients/new" element={<Navigate to="/clients" replace />} />
              <Route path="/audit" element={<AuditPage />} />
              <Route path="/verify" element={<VerifyPage />} />
              <Route path="/clients/:id" element={<ClientPage />} />
              <Route path="/accounts/:id" element={<AccountPage />} />
            </>
          )}
          {(session.role === "admin" || session.role === "root-admin") && (
            <>
              <Route path="/staff" element={<StaffPage role={session.role} />} />
              <Route path="/system-log" element={<SystemLogPage />} />
              <Route path="/erase" element={<ErasePage />} />
            </>
          )}
          <Route path="*" element={menu.length ? <Navigate to={menu[0][0]} replace /> : <p>This role has no screens.</p>} />
        </Routes>
      </main>
    </SessionContext.Provider>
  );
}

function SignIn() {
  const ended = endedAt();
  return (
    <main className="centered">
      <h1>Ledgerline</h1>
      {ended ? (
        <p role="alert" className="banner error">
          Your session has ended. Sign in again to go back to where you were; what you had typed is kept.
        </p>
      ) : (
        <p>The CRM for the bank's staff.</p>
      )}
      <button type="button" onClick={() => signIn()}>
        Sign in
      </button>
    </main>
  );
}

/**
 * A warning before the session ends: the access token expires within a minute and a
 * half and cannot be renewed (no refresh token), or renewing it failed.
 */
function ExpiryWarning() {
  const [ending, setEnding] = useState(false);
  const [renewFailed, setRenewFailed] = useState(false);
  useEffect(() => {
    const check = () =>
      userManager.getUser().then((user) => setEnding(!!user && !user.refresh_token && (user.expires_in ?? Infinity) < 90));
    const failed = () => setRenewFailed(true);
    const renewed = () => setRenewFailed(false);
    check();
    const timer = window.setInterval(check, 5000);
    userManager.events.addSilentRenewError(failed);
    userManager.events.addUserLoaded(renewed);
    return () => {
      window.clearInterval(timer);
      userManager.events.removeSilentRenewError(failed);
      userManager.events.removeUserLoaded(renewed);
    };
  }, []);
  const warning = ending || renewFailed;
  if (!warning) return null;
  return (
    <div role="alert" className="banner warn session-warning">
      Your session ends in about a minute. What you type is kept; you will be asked to sign in again.
      <button type="button" className="link" onClick={() => signIn(window.location.pathname + window.location.search)}>
        Sign in again now
      </button>
    </div>
  );
}
