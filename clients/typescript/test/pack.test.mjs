// `npm pack` gives a tarball that installs into an empty directory (no network: the package
// has no runtime dependency) and runs there: a client over TCP against the real chat server,
// and the package's `longlink-codegen` reading the server's /manifest.json.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { PACKAGE, outside } from './helpers.mjs';
import { startChat } from './server.mjs';

const npm = (args, cwd) => execFileSync('npm', [...args, '--no-audit', '--no-fund', '--loglevel=error'], { cwd, encoding: 'utf8' });

test('the packed package installs into an empty directory and talks to the server', { timeout: 180000 }, async () => {
  const packed = outside('pack');
  const app = outside('app');
  const server = await startChat({ encoding: 'protobuf' });
  try {
    npm(['pack', '--ignore-scripts', '--pack-destination', packed.dir], PACKAGE); // built by npm test
    const [tarball] = readdirSync(packed.dir).filter((f) => f.endsWith('.tgz'));
    assert.match(tarball, /^longlink-client-\d+\.\d+\.\d+\.tgz$/);
    writeFileSync(path.join(app.dir, 'package.json'), '{"name":"app","private":true,"type":"module"}\n');
    npm(['install', '--offline', path.join(packed.dir, tarball)], app.dir);
    const installed = path.join(app.dir, 'node_modules/longlink-client');
    assert.ok(existsSync(path.join(installed, 'dist/index.d.ts')), 'types are in the package');
    assert.ok(!existsSync(path.join(installed, 'src')), 'the sources are not');
    assert.deepEqual(JSON.parse(readFileSync(path.join(installed, 'package.json'), 'utf8')).dependencies, undefined);

    writeFileSync(path.join(app.dir, 'main.js'), `
      import { Client, Manifest } from 'longlink-client';
      const [tcp, http, token] = process.argv.slice(2);
      const manifest = await Manifest.load(http + '/manifest.json');
      const client = await Client.connect(tcp, { encoding: 'protobuf', manifest, resume: true });
      client.send('C2S_UserLogin', { token, login_plat: 0 });
      const reply = await client.next('S2C_UserLogin');
      console.log(JSON.stringify({ ret: reply.ret, uid: Number(reply.uid), resumable: client.session !== null }));
      client.close();
    `);
    const out = execFileSync(process.execPath, ['main.js', server.tcpUrl, server.http, await server.token(77)], { cwd: app.dir, encoding: 'utf8' });
    assert.deepEqual(JSON.parse(out), { ret: 1, uid: 77, resumable: true });

    const bin = path.join(app.dir, 'node_modules/.bin/longlink-codegen');
    execFileSync(bin, ['--manifest', `${server.http}/manifest.json`, '--lang', 'ts', '--out', path.join(app.dir, 'gen')], { encoding: 'utf8' });
    const generated = readFileSync(path.join(app.dir, 'gen/messages.ts'), 'utf8');
    assert.match(generated, /export interface C2S_UserLogin \{/);
    assert.match(generated, /export interface MessageMap \{/);
  } finally {
    await server.stop();
    packed.done();
    app.done();
  }
});
