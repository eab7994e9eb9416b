/**
 * Vitest global setup: builds the hub's web dashboard into
 * `packages/srp-hub/src/dashboard/assets.generated.ts` (git-ignored) before any test file
 * imports the hub from source, so `npm test` and `npx vitest run` work on a fresh clone
 * without a prior build. The package's `build` script runs the same.
 */
export default async function setup(): Promise<void> {
  const script = new URL("../../packages/srp-hub/scripts/build-dashboard.mjs", import.meta.url).href;
  const { buildDashboard } = (await import(script)) as { buildDashboard(): Promise<unknown> };
  await buildDashboard();
}
