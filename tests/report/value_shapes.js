// Prints the run-time shape of every graph output of MODEL as JSON, from one ONNX Runtime run on
// zero-filled float inputs of the given shapes: node value_shapes.js MODEL NAME=1x3x48x320...
const path = require('path');
const ort = require(path.join(__dirname, '..', 'ort', 'node_modules', 'onnxruntime-node'));

(async () => {
  const [model, ...specs] = process.argv.slice(2);
  const session = await ort.InferenceSession.create(model);
  const feeds = {};
  for (const spec of specs) {
    const [name, text] = spec.split('=');
    const dims = text.split('x').map(Number);
    feeds[name] = new ort.Tensor('float32', new Float32Array(dims.reduce((a, b) => a * b, 1)), dims);
  }
  const outputs = await session.run(feeds);
  const shapes = {};
  for (const [name, tensor] of Object.entries(outputs)) shapes[name] = tensor.dims;
  console.log(JSON.stringify(shapes));
})().catch((e) => {
  console.error(`value_shapes: ${e.message}`);
  process.exit(1);
});
