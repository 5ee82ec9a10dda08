// Runs a Lambda bundle's `handler` the way the Node.js runtime does, in a process of its own: the
// bundle is required once (the cold start: its module-level configuration and wiring), then each IPC
// message `{id, event, timeoutMs}` is one invocation with a context whose getRemainingTimeInMillis()
// counts down from timeoutMs; the answer is `{id, result}` or `{id, error: {name, message}}` (a thrown
// error is what makes Lambda retry an asynchronous event). Prints `READY` once the bundle is loaded.
//
//   node lambda-child.cjs <bundle/index.js>
const [bundle] = process.argv.slice(2);
const { handler } = require(bundle);

process.on('message', async ({ id, event, timeoutMs }) => {
  const deadline = Date.now() + timeoutMs;
  const context = {
    awsRequestId: id,
    functionName: 'pixelpipe-process',
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
  };
  try {
    process.send({ id, result: await handler(event, context) });
  } catch (err) {
    process.send({ id, error: { name: err && err.name, message: String((err && err.message) || err) } });
  }
});
process.on('disconnect', () => process.exit(0));
process.stdout.write(`READY ${typeof handler}\n`);
