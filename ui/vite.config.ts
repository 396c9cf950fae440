import { defineConfig } from "vitest/config";
import react from "@vitejs/plugin-react";

// In development the UI runs on Vite's server and talks to `crm serve` on :8080.
const api = process.env.CRM_API ?? "http://127.0.0.1:8080";

export default defineConfig({
  plugins: [react()],
  server: {
    proxy: Object.fromEntries(["/v1", "/auth", "/oauth2", "/.well-known"].map((path) => [path, api])),
  },
  test: { include: ["src/**/*.test.ts"] },
});
