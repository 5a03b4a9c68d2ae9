// Legacy mode end to end with an unmodified XEP-0045 client library:
// xmpp.js joins a room (creating it), a second user is made a member with
// muc#admin and joins too, both exchange groupchat, the subject changes,
// and both leave.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { client, xml } from "@xmpp/client";
import { startServer } from "./server.mjs";

const ROOM = "lobby@muclight.localhost";
let server;

before(async () => {
  server = await startServer({
    extraConfig: "[modules.mod_muc_light]\nlegacy_mode = true\n",
    users: { "alice@localhost": "alice-pw", "bob@localhost": "bob-pw" },
  });
});

after(async () => {
  await server?.stop();
});

// connect logs a user in and collects every stanza it receives.
async function connect(username, password) {
  const xmpp = client({ service: server.url, domain: "localhost", username, password, resource: "js" });
  const inbox = [];
  const waiters = [];
  xmpp.on("stanza", (stanza) => {
    inbox.push(stanza);
    for (const w of [...waiters]) w();
  });
  xmpp.on("error", () => {});
  await xmpp.start();
  // waitFor resolves with the first received stanza matching pred.
  xmpp.waitFor = (pred, what) =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${username}: timed out waiting for ${what}`)), 10000);
      const check = () => {
        const i = inbox.findIndex(pred);
        if (i >= 0) {
          clearTimeout(timer);
          waiters.splice(waiters.indexOf(check), 1);
          resolve(inbox.splice(i, 1)[0]);
        }
      };
      waiters.push(check);
      check();
    });
  return xmpp;
}

const mucUser = (s) => s.getChild("x", "http://jabber.org/protocol/muc#user");
const codes = (s) => (mucUser(s)?.getChildren("status") ?? []).map((c) => c.attrs.code);
const isSelfPresence = (s) => s.is("presence") && codes(s).includes("110");

test("an XEP-0045 client uses a legacy-mode room end to end", async () => {
  const alice = await connect("alice", "alice-pw");
  const bob = await connect("bob", "bob-pw");
  try {
    // Join-to-create.
    await alice.send(xml("presence", { to: `${ROOM}/alice` }, xml("x", { xmlns: "http://jabber.org/protocol/muc" })));
    const created = await alice.waitFor(isSelfPresence, "alice's self-presence");
    assert.deepEqual(codes(created).sort(), ["110", "201", "210"]);
    assert.equal(created.attrs.from, `${ROOM}/alice@localhost`);
    assert.equal(mucUser(created).getChild("item").attrs.affiliation, "owner");

    // Make bob a member; he is invited, then joins.
    await alice.iqCaller.set(
      xml("query", { xmlns: "http://jabber.org/protocol/muc#admin" }, xml("item", { affiliation: "member", jid: "bob@localhost" })),
      ROOM,
    );
    const invite = await bob.waitFor((s) => s.is("message") && mucUser(s)?.getChild("invite"), "an invitation");
    assert.equal(invite.attrs.from, ROOM);
    await bob.send(xml("presence", { to: `${ROOM}/bob@localhost` }, xml("x", { xmlns: "http://jabber.org/protocol/muc" })));
    const bobSelf = await bob.waitFor(isSelfPresence, "bob's self-presence");
    assert.equal(mucUser(bobSelf).getChild("item").attrs.role, "participant");
    await bob.waitFor((s) => s.is("message") && s.getChild("subject") !== undefined, "the subject after joining");

    // Groupchat both ways.
    await bob.send(xml("message", { to: ROOM, type: "groupchat", id: "b1" }, xml("body", {}, "hello from bob")));
    const got = await alice.waitFor((s) => s.is("message") && s.getChildText("body") === "hello from bob", "bob's message");
    assert.equal(got.attrs.from, `${ROOM}/bob@localhost`);
    await bob.waitFor((s) => s.is("message") && s.attrs.id === "b1", "bob's own echo");
    await alice.send(xml("message", { to: ROOM, type: "groupchat" }, xml("body", {}, "hi bob")));
    await bob.waitFor((s) => s.is("message") && s.getChildText("body") === "hi bob", "alice's message");

    // Subject change, seen by both.
    await alice.send(xml("message", { to: ROOM, type: "groupchat" }, xml("subject", {}, "Weekly sync")));
    for (const c of [alice, bob]) {
      const s = await c.waitFor((s) => s.is("message") && s.getChildText("subject") === "Weekly sync", "the new subject");
      assert.equal(s.attrs.from, `${ROOM}/alice@localhost`);
    }

    // Leave.
    for (const [c, nick] of [[bob, "bob@localhost"], [alice, "alice"]]) {
      await c.send(xml("presence", { to: `${ROOM}/${nick}`, type: "unavailable" }));
      const left = await c.waitFor((s) => s.is("presence") && s.attrs.type === "unavailable" && codes(s).includes("110"), "own unavailable presence");
      assert.ok(left);
    }
  } finally {
    await bob.stop();
    await alice.stop();
  }
});
