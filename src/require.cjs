// require('celeriac'): celeriac is an ES module. Node 20.19+ and 22.12+ load it through require();
// where that is not possible, one line says to use import() instead.
'use strict';
try {
  module.exports = require('./index.js');
} catch (err) {
  if (err && (err.code === 'ERR_REQUIRE_ESM' || err.code === 'ERR_REQUIRE_ASYNC_MODULE')) {
    const [major, minor] = process.versions.node.split('.').map(Number);
    const able = (major === 20 && minor >= 19) || (major === 22 && minor >= 12) || major > 22;
    const why = able ? 'require() of ES modules is turned off in this process (--no-experimental-require-module)' : `Node ${process.version} cannot require() an ES module (Node 20.19+ and 22.12+ can)`;
    const e = new Error(`celeriac is an ES module and ${why}: use const { Celeriac } = await import('celeriac')`);
    e.code = 'ERR_REQUIRE_ESM';
    throw e;
  }
  throw err;
}
