import { defineConfig } from "vitest/config";
import react from "@vitejs/plugin-react";

// The dev server proxies the API (and the same-origin WebSocket fallback) to
// the gateway, so `npm run dev` behaves like the page served by the gateway.
const gateway = process.env.GATEWAY_URL ?? "http://127.0.0.1:8080";
const wsOrigin = process.env.WS_ORIGIN ?? "ws://127.0.0.1:8081";
const proxy = {
  "/v1": { target: gateway, ws: true, changeOrigin: false },
  "/healthz": gateway,
};
// The gateway's policy, so `vite preview` shows CSP violations the same way.
const csp =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
  `connect-src 'self' ${wsOrigin}; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'`;

export default defineConfig({
  plugins: [react()],
  build: {
    outDir: "dist",
    sourcemap: false,
    // Keep every asset a file: nothing inlined as data: URLs or inline code,
    // so the page works under `default-src 'self'; style-src 'self'`.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
  },
  server: { host: "127.0.0.1", proxy },
  preview: { host: "127.0.0.1", proxy, headers: { "Content-Security-Policy": csp } },
  test: {
    include: ["src/**/*.test.ts"],
    environment: "node",
  },
});
