// tests/server/compat/compat.mjs - drive mesad with Mesa's published REST
// client (@mesadev/rest, generated from Mesa's OpenAPI schema) through one
// scenario: identity, repos, changes (stale base included), content,
// bookmarks (create/move/merge no_op/delete). Every response is checked
// with node:assert; one line "ok N step" per step, "not ok N step: why" and
// exit 1 on the first failure. Run by tests/server/compat.bats.
//
// usage: node compat.mjs key|token
// env:   MESAD_URL, MESA_ORG, MESA_REPO, MESA_API_KEY, MESA_KEY_ID,
//        MESA_TOKEN (an access token signed from the key, for "token")

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as mesa from '@mesadev/rest';

// The package exports only its SDK functions; the client factory sits next
// to them (dist/client/index.js).
const clientMod = await import(new URL('./client/index.js', import.meta.resolve('@mesadev/rest')));

const mode = process.argv[2] ?? 'key';
const env = (name) => {
    const v = process.env[name];
    if (!v) throw new Error(`${name} is not set`);
    return v;
};
const org = env('MESA_ORG');
const repo = env('MESA_REPO');
const credential = mode === 'token' ? env('MESA_TOKEN') : env('MESA_API_KEY');
const client = clientMod.createClient(
    clientMod.createConfig({ baseUrl: `${env('MESAD_URL')}/v1`, auth: credential }),
);

const ROOT = 'z'.repeat(32);
const CHANGE_ID = /^[k-z]{32}$/;
const OID = /^[0-9a-f]{40}$/;
const b64 = (s) => Buffer.from(s).toString('base64');
const unb64 = (s) => Buffer.from(s, 'base64').toString();
const blobOid = (s) => {
    const b = Buffer.from(s);
    return createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex');
};

// ok(result, status): assert a successful answer with that status, return data
function ok(r, status) {
    if (r.error !== undefined) {
        throw new Error(`HTTP ${r.response?.status}: ${JSON.stringify(r.error)}`);
    }
    assert.equal(r.response.status, status);
    return r.data;
}

// fails(result, status, code): assert an error answer in Mesa's error shape
function fails(r, status, code) {
    assert.equal(r.data, undefined, `expected HTTP ${status}, got ${r.response?.status}`);
    assert.equal(r.response.status, status);
    assert.equal(r.error.error.code, code);
    assert.equal(typeof r.error.error.message, 'string');
    return r.error.error;
}

let n = 0;
async function step(name, fn) {
    n += 1;
    try {
        await fn();
    } catch (e) {
        console.log(`not ok ${n} ${name}: ${e.message}`);
        process.exit(1);
    }
    console.log(`ok ${n} ${name}`);
}

const p = { org, repo };
const st = {};

await step('whoami', async () => {
    const d = ok(await mesa.whoami({ client }), 200);
    assert.equal(d.org.slug, org);
    assert.equal(typeof d.org.id, 'string');
    assert.equal(typeof d.org.name, 'string');
    assert.equal(d.key_id, env('MESA_KEY_ID'));
    for (const s of ['read', 'write', 'admin']) assert.ok(d.scopes.includes(s), `scope ${s}`);
});

await step('createRepo', async () => {
    const d = ok(await mesa.createRepo({ client, path: { org }, body: { name: repo } }), 201);
    assert.equal(d.name, repo);
    assert.equal(d.org, org);
    assert.equal(d.default_bookmark, 'main');
    assert.equal(d.head_change_id, ROOT);
    assert.equal(d.upstream, null);
    assert.deepEqual(d.tags, {});
    assert.equal(typeof d.id, 'string');
    assert.ok(!Number.isNaN(Date.parse(d.created_at)));
    st.repoId = d.id;
});

await step('createRepo again is ALREADY_EXISTS', async () => {
    fails(await mesa.createRepo({ client, path: { org }, body: { name: repo } }), 409, 'ALREADY_EXISTS');
});

await step('getRepo and listRepos', async () => {
    const d = ok(await mesa.getRepo({ client, path: p }), 200);
    assert.equal(d.id, st.repoId);
    assert.equal(d.name, repo);
    const l = ok(await mesa.listRepos({ client, path: { org }, query: { limit: 100 } }), 200);
    assert.equal(typeof l.has_more, 'boolean');
    assert.ok(l.repos.some((r) => r.id === st.repoId && r.name === repo));
});

await step('createChange with base64 files', async () => {
    const d = ok(await mesa.createChange({
        client,
        path: p,
        body: {
            base_change_id: ROOT,
            message: 'first',
            author: { name: 'Ada', email: 'ada@example.com' },
            files: [
                { path: 'hello.txt', content: b64('hello\n'), encoding: 'base64' },
                { path: 'dir/tool.sh', content: b64('#!/bin/sh\n'), mode: '100755' },
            ],
        },
    }), 201);
    assert.match(d.id, CHANGE_ID);
    assert.match(d.current_commit_oid, OID);
    assert.deepEqual(d.parents, [ROOT]);
    assert.equal(d.message, 'first');
    assert.equal(d.author.name, 'Ada');
    assert.equal(d.author.email, 'ada@example.com');
    assert.equal(d.is_conflicted, false);
    st.change = d.id;
    st.commit1 = d.current_commit_oid;
});

await step('getContent of a file', async () => {
    const d = ok(await mesa.getContent({ client, path: p, query: { change_id: st.change, path: 'hello.txt' } }), 200);
    assert.equal(d.type, 'file');
    assert.equal(d.name, 'hello.txt');
    assert.equal(d.path, 'hello.txt');
    assert.equal(d.size, 6);
    assert.equal(d.encoding, 'base64');
    assert.equal(unb64(d.content), 'hello\n');
    assert.equal(d.mode, '100644');
    assert.equal(d.sha, blobOid('hello\n'));
});

await step('getContent of a directory', async () => {
    const d = ok(await mesa.getContent({ client, path: p, query: { change_id: st.change, path: 'dir' } }), 200);
    assert.equal(d.type, 'dir');
    assert.equal(d.name, 'dir');
    assert.equal(d.child_count, 1);
    assert.equal(d.entries.length, 1);
    const e = d.entries[0];
    assert.deepEqual([e.type, e.name, e.path, e.mode, e.size], ['file', 'tool.sh', 'dir/tool.sh', '100755', 10]);
    const root = ok(await mesa.getContent({ client, path: p, query: { change_id: st.change } }), 200);
    assert.equal(root.type, 'dir');
    assert.equal(root.child_count, 2);
    assert.deepEqual(root.entries.map((x) => [x.name, x.type]).sort(), [['dir', 'dir'], ['hello.txt', 'file']]);
});

await step('getContent raw bytes with Accept: application/octet-stream', async () => {
    const d = ok(await mesa.getContent({
        client,
        path: p,
        query: { change_id: st.change, path: 'dir/tool.sh' },
        headers: { Accept: 'application/octet-stream' },
        parseAs: 'arrayBuffer',
    }), 200);
    assert.equal(Buffer.from(d).toString(), '#!/bin/sh\n');
});

await step('updateChange with base_commit_oid', async () => {
    const d = ok(await mesa.updateChange({
        client,
        path: { ...p, change_id: st.change },
        body: {
            base_commit_oid: st.commit1,
            files: [{ path: 'second.txt', content: b64('two') }, { path: 'hello.txt', action: 'delete' }],
        },
    }), 200);
    assert.equal(d.id, st.change);
    assert.match(d.current_commit_oid, OID);
    assert.notEqual(d.current_commit_oid, st.commit1);
    assert.equal(d.message, 'first');
    assert.deepEqual(d.parents, [ROOT]);
    st.commit2 = d.current_commit_oid;
});

await step('updateChange with a stale base is 409 STALE_BASE', async () => {
    const e = fails(await mesa.updateChange({
        client,
        path: { ...p, change_id: st.change },
        body: { base_commit_oid: st.commit1, files: [{ path: 'late.txt', content: b64('late') }] },
    }), 409, 'STALE_BASE');
    assert.equal(e.details.current_commit_oid, st.commit2);
});

await step('getChange', async () => {
    const d = ok(await mesa.getChange({ client, path: { ...p, change_id: st.change } }), 200);
    assert.equal(d.current_commit_oid, st.commit2);
    assert.deepEqual([...d.files].sort(), ['dir/tool.sh', 'second.txt']);
    assert.deepEqual(d.conflicts, []);
});

await step('createBookmark and listBookmarks', async () => {
    const d = ok(await mesa.createBookmark({ client, path: p, body: { name: 'feature', change_id: st.change } }), 201);
    assert.deepEqual(d, { name: 'feature', change_id: st.change, is_default: false });
    const l = ok(await mesa.listBookmarks({ client, path: p }), 200);
    assert.equal(l.has_more, false);
    const byName = Object.fromEntries(l.bookmarks.map((b) => [b.name, b]));
    assert.deepEqual(byName.main, { name: 'main', change_id: ROOT, is_default: true });
    assert.deepEqual(byName.feature, { name: 'feature', change_id: st.change, is_default: false });
});

await step('moveBookmark', async () => {
    const d = ok(await mesa.moveBookmark({
        client, path: { ...p, bookmark: 'main' }, body: { change_id: st.change },
    }), 200);
    assert.deepEqual(d, { name: 'main', change_id: st.change, is_default: true, from_change_id: ROOT });
    const r = ok(await mesa.getRepo({ client, path: p }), 200);
    assert.equal(r.head_change_id, st.change);
});

await step('mergeBookmark of two bookmarks on one commit is no_op', async () => {
    const d = ok(await mesa.mergeBookmark({ client, path: p, body: { target: 'main', source: 'feature' } }), 200);
    assert.equal(d.merge_type, 'no_op');
    assert.equal(d.is_conflicted, false);
    assert.equal(d.commit_oid, st.commit2);
    assert.equal(d.change_id, st.change);
    assert.equal(d.target, 'main');
    assert.equal(d.source, 'feature');
    assert.equal(d.source_deleted, false);
});

await step('listChanges', async () => {
    const b = ok(await mesa.listChanges({ client, path: p, query: { bookmark: 'main' } }), 200);
    assert.deepEqual(b.changes.map((c) => c.id), [st.change, ROOT]);
    assert.equal(b.changes[0].current_commit_oid, st.commit2);
    const all = ok(await mesa.listChanges({ client, path: p, query: { limit: 10 } }), 200);
    assert.equal(typeof all.has_more, 'boolean');
    assert.ok(all.changes.some((c) => c.id === st.change));
});

await step('deleteBookmark', async () => {
    const d = ok(await mesa.deleteBookmark({ client, path: { ...p, bookmark: 'feature' } }), 200);
    assert.deepEqual(d, { success: true });
    fails(await mesa.getBookmark({ client, path: { ...p, bookmark: 'feature' } }), 404, 'NOT_FOUND');
});

await step('deleteRepo', async () => {
    const d = ok(await mesa.deleteRepo({ client, path: p }), 200);
    assert.deepEqual(d, { success: true });
    fails(await mesa.getRepo({ client, path: p }), 404, 'NOT_FOUND');
});
