/**
 * Loaded before every test file under `npm test` (`--import`): a property
 * run straight through `fc.assert` (not `runProperty`) gets a fixed seed, so
 * CI replays exactly the cases a developer ran and no fresh seed can turn it
 * red. `npm run fuzz` (FUZZ=1) leaves fast-check's fresh seeds alone, and
 * FUZZ_SEED replays one.
 */
import fc from "fast-check";

if (process.env.FUZZ !== "1") {
  const given = process.env.FUZZ_SEED;
  fc.configureGlobal({ ...fc.readConfigureGlobal(), seed: given ? Number(given) : 0x5eed_2026 });
}
