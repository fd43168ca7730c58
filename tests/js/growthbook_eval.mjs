// The GrowthBook JavaScript SDK evaluating a payload locally, as a browser or Node.js
// application does. Reads a JSON file {payload, units, features} and prints one JSON object:
// per unit, per feature, the value and the experiments the SDK reported as viewed:
//   node growthbook_eval.mjs INPUT.json
import { readFileSync } from "node:fs";
import { GrowthBook } from "@growthbook/growthbook";

const input = JSON.parse(readFileSync(process.argv[2], "utf8"));
const out = {};
for (const unit of input.units) {
  const viewed = [];
  const gb = new GrowthBook({
    attributes: { id: unit },
    trackingCallback: (experiment, result) => viewed.push([experiment.key, result.key]),
  });
  await gb.setPayload(input.payload);
  const values = {};
  for (const feature of input.features) {
    values[feature] = gb.getFeatureValue(feature, null);
  }
  out[unit] = { values, viewed };
  gb.destroy();
}
console.log(JSON.stringify(out));
