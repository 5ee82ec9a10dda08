// A child process that serves one bundled GCP HTTP function with the real functions-framework, on
// 127.0.0.1 only (the framework's own CLI listens on every interface). The function is registered
// from the bundle's export, as the framework's loader does for a bundle carrying its own copy of the
// framework, and the server is the framework's (getServer through its testing entry: the same body
// parsers and middleware as in production), listening on `PORT` as the framework's CLI does. A second,
// plain server in the same process echoes the headers it receives, to show the function's body guard
// leaves other servers alone. Prints `READY <port> <echo port>`; answers an IPC `rss` message with the
// process's current and peak resident set size, so a test can bound the memory a request cost.
//
//   node functions-framework-child.cjs <bundle.js> <target>
const { http } = require('@google-cloud/functions-framework');
const { getTestServer } = require('@google-cloud/functions-framework/testing');

const [bundle, target] = process.argv.slice(2);
const mod = require(bundle);
http(target, mod[target]);
const server = getTestServer(target);
const echo = require('node:http').createServer((req, res) => {
  req.resume();
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify(req.headers));
});
server.listen(Number(process.env.PORT), '127.0.0.1', () => {
  echo.listen(0, '127.0.0.1', () => process.stdout.write(`READY ${server.address().port} ${echo.address().port}\n`));
});
process.on('message', (msg) => {
  if (msg === 'rss') process.send({ rss: process.memoryUsage().rss, maxRss: process.resourceUsage().maxRSS * 1024 });
});
process.on('disconnect', () => {
  echo.close();
  server.close(() => process.exit(0));
});
