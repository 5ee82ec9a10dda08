// Preloaded (`node -r`) into a child that runs a server CLI which listens on every interface (the
// functions-framework CLI takes no host): a `listen(port, …)` without a host binds 127.0.0.1 instead,
// and the first server to listen prints `LISTENING <port>` so the test can find it (PORT=0: a free port).
const net = require('node:net');

const listen = net.Server.prototype.listen;
let announced = false;
net.Server.prototype.listen = function (...args) {
  if ((typeof args[0] === 'number' || typeof args[0] === 'string') && typeof args[1] !== 'string') args.splice(1, 0, '127.0.0.1');
  this.once('listening', () => {
    if (announced) return;
    announced = true;
    process.stdout.write(`LISTENING ${this.address().port}\n`);
  });
  return listen.apply(this, args);
};
