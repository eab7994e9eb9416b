// Ships spec/v1/schema.json inside @srp/conformance (conformance/schema/v1.json), so the
// published suite validates against the exact schema of the spec it was built from.
import { copyFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
mkdirSync(join(root, "conformance", "schema"), { recursive: true });
copyFileSync(join(root, "spec", "v1", "schema.json"), join(root, "conformance", "schema", "v1.json"));
