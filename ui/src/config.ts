// Where the identity provider and the API are. By default both are the server that
// serves this page (`crm serve`); for Cognito and CloudFront, set them at build time.
export const config = {
  authority: import.meta.env.VITE_OIDC_AUTHORITY ?? window.location.origin,
  clientId: import.meta.env.VITE_OIDC_CLIENT_ID ?? "crm-ui",
  apiBase: import.meta.env.VITE_API_BASE ?? "",
  redirectUri: `${window.location.origin}/callback`,
};
