// The GrowthBook JavaScript SDK as an application runs it with remote evaluation (or with a
// decryption key), one SDK instance per unit. Reads a JSON file of units and prints one JSON
// line per unit: the value of every feature and the experiments the SDK reported to its
// tracking callback.
//   node growthbook_remote_eval.mjs API_HOST CLIENT_KEY UNITS_FILE [DECRYPTION_KEY]
// Each unit: {"attributes": {...}, "forcedVariations": {...}, "forcedFeatures": [[key, value]]}.
// Without DECRYPTION_KEY the SDK runs with `remoteEval: true`; with it, it fetches the
// (encrypted) payload and evaluates locally.
import { readFileSync } from "node:fs";
import { GrowthBook, configureCache } from "@growthbook/growthbook";

const [apiHost, clientKey, unitsFile, decryptionKey] = process.argv.slice(2);
const units = JSON.parse(readFileSync(unitsFile, "utf8"));
configureCache({ disableCache: true });

for (const unit of units) {
  const tracked = [];
  const gb = new GrowthBook({
    apiHost,
    clientKey,
    ...(decryptionKey ? { decryptionKey } : { remoteEval: true }),
    attributes: unit.attributes,
    forcedVariations: unit.forcedVariations || {},
    forcedFeatureValues: new Map(unit.forcedFeatures || []),
    trackingCallback: (experiment, result) =>
      tracked.push({ experiment: experiment.key, variation: result.key, hashValue: result.hashValue }),
  });
  const ready = await gb.init({ timeout: 5000 });
  const values = {};
  for (const key of Object.keys(gb.getFeatures())) {
    values[key] = gb.getFeatureValue(key, null);
  }
  console.log(JSON.stringify({ ready: ready.success, error: ready.error ? String(ready.error) : null, values, tracked }));
  gb.destroy();
}
