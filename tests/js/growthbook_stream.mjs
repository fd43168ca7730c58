// The GrowthBook JavaScript SDK in streaming mode, as an application runs it in Node.js (with the
// `eventsource` package as its EventSource). Prints one JSON line when the SDK is ready and
// one each time the value of FEATURE changes, with the time in milliseconds:
//   node growthbook_stream.mjs API_HOST CLIENT_KEY FEATURE [remote]
// With "remote" the SDK runs with remoteEval: the stream only tells it to evaluate again.
import { GrowthBook, setPolyfills } from "@growthbook/growthbook";
import { EventSource } from "eventsource";

setPolyfills({ EventSource });

const [apiHost, clientKey, feature, mode] = process.argv.slice(2);
const gb = new GrowthBook({ apiHost, clientKey, attributes: { id: "stream-user" }, remoteEval: mode === "remote" });

let shown;
const report = () => {
  const value = gb.getFeatureValue(feature, null);
  const text = JSON.stringify(value);
  if (text !== shown) {
    shown = text;
    console.log(JSON.stringify({ value, at: Date.now() }));
  }
};

const result = await gb.init({ timeout: 5000, streaming: true });
console.log(JSON.stringify({ ready: result.success, source: result.source, at: Date.now() }));
report();
gb.setRenderer(report);
// Reads the SDK's in-memory features only: a change can reach them through the stream alone.
setInterval(report, 20);
