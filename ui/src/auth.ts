// Sign-in with OpenID Connect, authorization code + PKCE (oidc-client-ts), against the
// embedded provider or Cognito. Tokens are kept in session storage and refreshed with
// the refresh token before they expire.

import { User, UserManager, WebStorageStateStore } from "oidc-client-ts";
import { config } from "./config";

export const userManager = new UserManager({
  authority: config.authority,
  client_id: config.clientId,
  redirect_uri: config.redirectUri,
  post_logout_redirect_uri: window.location.origin,
  response_type: "code",
  scope: "openid",
  automaticSilentRenew: true,
  userStore: new WebStorageStateStore({ store: window.sessionStorage }),
});

export type Role = "root-admin" | "admin" | "agent" | "auditor" | "worker";

export type Session = { user: User; id: string; username: string; role: Role };

/** What the access token says about its holder (Cognito's claim names). */
export function sessionOf(user: User): Session | null {
  const payload = user.access_token.split(".")[1];
  if (!payload) return null;
  const claims = JSON.parse(atob(payload.replace(/-/g, "+").replace(/_/g, "/")));
  const groups: string[] = claims["cognito:groups"] ?? [];
  const role = (["root-admin", "admin", "auditor", "agent", "worker"] as Role[]).find((r) => groups.includes(r));
  return role ? { user, id: claims.sub, username: claims.username ?? claims.sub, role } : null;
}

export async function signOut(): Promise<void> {
  // The next person at this tab sees nothing of this one's work.
  for (const key of Object.keys(sessionStorage)) {
    if (key.startsWith("ledgerline.")) sessionStorage.removeItem(key);
  }
  await userManager.removeUser();
  window.location.assign("/");
}

/** Where the app was when the session ended, so sign-in can return there. */
const ENDED = "ledgerline.session-ended";

/** The server refused the token (401): remember the page, then drop the session. */
export async function sessionEnded(): Promise<void> {
  sessionStorage.setItem(ENDED, window.location.pathname + window.location.search);
  await userManager.removeUser();
}

/** The page the ended session was on, if it ended rather than being signed out. */
export function endedAt(): string | null {
  return sessionStorage.getItem(ENDED);
}

/** Signs in, coming back to `returnTo` (by default the page asked for). */
export function signIn(returnTo = endedAt() ?? window.location.pathname + window.location.search): Promise<void> {
  return userManager.signinRedirect({ state: { returnTo } });
}

/** After sign-in: the page to go back to (only a path of this app). */
export function returnPath(state: unknown): string {
  sessionStorage.removeItem(ENDED);
  const returnTo = (state as { returnTo?: unknown } | undefined)?.returnTo;
  return typeof returnTo === "string" && returnTo.startsWith("/") && !returnTo.startsWith("//") ? returnTo : "/";
}
