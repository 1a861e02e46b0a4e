// Drives Customer.io's official Node libraries through every public method against the fake Customer.io.
//
//   node drive.cjs '{"url": "http://127.0.0.1:PORT", "siteId": "...", "apiKey": "...", "writeKey": "..."}'
//
// customerio-node's TrackClient and PipelinesClient take `url` (their documented override "to point at a
// custom host, e.g. a mock server"); @customerio/cdp-analytics-node takes `host` and posts every call to
// `/v1/batch`. Each call is awaited in turn (retries off), and its outcome printed as one JSON line:
// {"call": "...", "ok": true} or {"call": "...", "ok": false, "status": 400, "error": "..."}. The test
// (tests/test_node_libraries.py) reads the requests from the fake and replays them through the tools.
'use strict';

const { TrackClient, PipelinesClient } = require('customerio-node');
const { Analytics } = require('@customerio/cdp-analytics-node');

const config = JSON.parse(process.argv[2]);
const WHEN = 1700000000;
const ISO = '2024-01-02T03:04:05.000Z';
const ODD_ID = 'user 1/x?y#z (ü)';
const PHONE = '+14155552671';

function report(call, error) {
  const line = { call, ok: error === undefined };
  if (error !== undefined) {
    line.status = error.statusCode;
    line.error = String(error.message || error);
  }
  process.stdout.write(JSON.stringify(line) + '\n');
}

async function attempt(call, run) {
  try {
    await run();
    report(call);
  } catch (error) {
    report(call, error);
  }
}

async function track(cio) {
  const attributes = {
    email: 'zoë@example.com',
    created_at: WHEN,
    plan: 'pro',
    score: 99.5,
    tags: ['a', 'b'],
    address: { city: 'Paris', geo: { lat: 48.85, lon: 2.35 } },
    gone: null,
    name: 'Zoë 👋',
  };
  await attempt('identify', () => cio.identify(ODD_ID, attributes));
  await attempt('identify by email', () => cio.identify('a+b@example.com', { first_name: 'A' }));
  await attempt('identify by phone', () => cio.identify(PHONE, { plan: 'sms' }));
  await attempt('identify by cio_id', () => cio.identify('cio_03000010', { email: 'new@example.com' }));
  await attempt('identify with subscription preferences', () =>
    cio.identify('42', { cio_subscription_preferences: { topics: { topic_1: true, topic_2: false } } }),
  );
  await attempt('track', () =>
    cio.track('42', {
      name: 'purchase',
      data: { price: 23.45, items: [{ sku: 'a', qty: 2 }], coupon: null, note: '日本語' },
      timestamp: WHEN,
      id: '01HZY7V3C9W3ZJ4K8XQJ1N5T2M',
    }),
  );
  await attempt('track, odd id', () => cio.track(ODD_ID, { name: 'signed_up' }));
  await attempt('trackAnonymous', () => cio.trackAnonymous('anon-1', { name: 'watched', data: { video: 'intro' } }));
  await attempt('trackAnonymous, numeric id', () => cio.trackAnonymous(12345, { name: 'visited' }));
  await attempt('trackAnonymous, invite', () =>
    cio.trackAnonymous('', { name: 'invite', data: { recipient: 'friend@example.com' } }),
  );
  await attempt('trackPageView', () => cio.trackPageView('42', 'https://example.com/pricing?plan=pro#top'));
  await attempt('addDevice, documented example', () => cio.addDevice('42', 'device-token-1', 'ios', { primary: true }));
  await attempt('addDevice', () =>
    cio.addDevice('42', 'device-token-2', 'android', {
      last_used: WHEN,
      app_version: '1.2.3',
      push_enabled: 'true',
      battery: 0.5,
      carrier: null,
    }),
  );
  await attempt('deleteDevice', () => cio.deleteDevice(ODD_ID, 'token/with?odd#chars'));
  await attempt('suppress', () => cio.suppress('42'));
  await attempt('unsuppress', () => cio.unsuppress(PHONE));
  await attempt('mergeCustomers', () => cio.mergeCustomers('id', '42', 'email', 'old@example.com'));
  await attempt('mergeCustomers by cio_id', () => cio.mergeCustomers('cio_id', '03000010', 'id', ODD_ID));
  await attempt('destroy', () => cio.destroy(ODD_ID));
  await attempt('getAccountRegion', () => cio.getAccountRegion());
  await attempt('entity', () =>
    cio.entity({
      type: 'person',
      action: 'identify',
      identifiers: { phone: PHONE },
      attributes: { plan: 'sms', score: 1.5, tags: ['x'], nothing: null },
    }),
  );
  await attempt('entity, object', () =>
    cio.entity({
      type: 'object',
      action: 'identify',
      identifiers: { object_type_id: '1', object_id: 'acme/inc' },
      attributes: { name: 'Acme', employees: 12 },
      cio_relationships: [{ identifiers: { email: 'a@example.com' }, relationship_attributes: { role: 'admin' } }],
    }),
  );
  await attempt('batch', () =>
    cio.batch([
      { type: 'person', action: 'identify', identifiers: { id: '42' }, attributes: { plan: 'pro' } },
      { type: 'person', action: 'event', identifiers: { email: 'a@example.com' }, name: 'purchase', timestamp: WHEN },
      { type: 'person', action: 'page', identifiers: { id: '42' }, name: '/pricing', attributes: { referrer: 'ad' } },
      { type: 'person', action: 'add_device', identifiers: { phone: PHONE }, device: { token: 't', platform: 'ios' } },
      { type: 'person', action: 'merge', primary: { id: '42' }, secondary: { phone: PHONE } },
      { type: 'person', action: 'suppress', identifiers: { cio_id: '03000010' } },
      {
        type: 'object',
        action: 'add_relationships',
        identifiers: { object_type_id: '1', object_id: 'acme' },
        cio_relationships: [{ identifiers: { id: '42' } }],
      },
      {
        // No timestamp: the description gives a delivery event none (the server would warn it is ignored).
        type: 'delivery',
        action: 'event',
        identifiers: { id: 'dlv_1' },
        name: 'opened',
        attributes: { device_token: 'device-token-1' },
      },
    ]),
  );
  await attempt('addCustomersToSegment', () => cio.addCustomersToSegment('7', ['42', ODD_ID]));
  await attempt('addCustomersToSegment by email', () => cio.addCustomersToSegment(7, ['a@example.com'], 'email'));
  await attempt('removeCustomersFromSegment', () => cio.removeCustomersFromSegment(7, ['03000010'], 'cio_id'));
  await attempt('submitForm', () =>
    cio.submitForm('contact form', { email: 'a@example.com', first_name: 'Zoë', id: 12345, consent: 'yes' }),
  );
  await attempt('reportMetric', () =>
    cio.reportMetric({ delivery_id: 'dlv_1', metric: 'clicked', href: 'https://example.com/?a=1', timestamp: WHEN }),
  );
  await attempt('unsubscribe', () => cio.unsubscribe('dlv_1'));
  await attempt('unsubscribe, false', () => cio.unsubscribe('dlv_2', false));
  // Calls Customer.io's docs call invalid, which the library sends as given: the tools refuse them.
  await attempt('invalid: addCustomersToSegment, numeric ids', () => cio.addCustomersToSegment(7, [42, 43]));
}

async function pipelines(cdp) {
  const context = { ip: '8.8.8.8', locale: 'fr-FR', page: { url: 'https://example.com/a?b=c#d' } };
  await attempt('pipelines identify', () =>
    cdp.identify({ userId: '42', traits: { email: 'zoë@example.com', score: 99.5, tags: ['a'], nested: { x: null } } }),
  );
  await attempt('pipelines identify, anonymous', () =>
    cdp.identify({ anonymousId: 'anon-1', traits: { unsubscribed: true }, context }),
  );
  await attempt('pipelines track', () =>
    cdp.track({ userId: ODD_ID, event: 'Order Completed', properties: { total: 5.5, items: [] }, timestamp: ISO }),
  );
  await attempt('pipelines track, User Suppressed', () => cdp.track({ userId: '42', event: 'User Suppressed' }));
  await attempt('pipelines track, Device Created or Updated', () =>
    cdp.track({
      userId: '42',
      event: 'Device Created or Updated',
      context: { device: { token: 'device-token-1', type: 'ios' } },
    }),
  );
  await attempt('pipelines page', () =>
    cdp.page({ anonymousId: 'anon-1', name: 'Pricing', category: 'Docs', properties: { url: 'https://x/y' } }),
  );
  await attempt('pipelines screen', () => cdp.screen({ userId: '42', name: 'Settings', properties: { from: 'push' } }));
  await attempt('pipelines group', () =>
    cdp.group({ userId: '42', groupId: 'acme', traits: { name: 'Acme', objectTypeId: '1' } }),
  );
  await attempt('pipelines alias', () => cdp.alias({ userId: '42', previousId: 'anon-1' }));
  await attempt('pipelines batch', () =>
    cdp.batch([
      { type: 'identify', userId: '42', traits: { plan: 'pro' } },
      { type: 'track', anonymousId: 'anon-1', event: 'Viewed', properties: { n: 1 } },
      { type: 'track', userId: '42', event: 'Device Deleted', context: { device: { token: 'device-token-1' } } },
      { type: 'page', userId: '42', name: 'Home' },
      { type: 'screen', anonymousId: 'anon-1', name: 'Main' },
      { type: 'group', userId: '42', groupId: 'acme' },
      { type: 'alias', userId: '42', previousId: 'anon-2' },
    ]),
  );
  // The library's types allow a numeric userId; Customer.io's docs define it as a string.
  await attempt('invalid: pipelines identify, numeric userId', () => cdp.identify({ userId: 42, traits: {} }));
}

function analytics(client) {
  // Each method queues a call; closeAndFlush sends them all in one /v1/batch of mixed types.
  const when = new Date(ISO);
  client.identify({ userId: '42', traits: { email: 'a@example.com', score: 99.5, tags: ['a'], nested: { x: 1 } } });
  client.identify({ anonymousId: 'anon-1', traits: { plan: 'trial', cio_subscription_preferences: { topics: {} } } });
  client.track({ userId: ODD_ID, event: 'Order Completed', properties: { total: 5 }, timestamp: when });
  client.track({ anonymousId: 'anon-1', event: 'Viewed', integrations: { All: true }, context: { ip: '8.8.8.8' } });
  client.track({ userId: '42', event: 'User Deleted' });
  client.page({ userId: '42', category: 'Docs', name: 'Intro', properties: { url: 'https://example.com/docs' } });
  client.screen({ userId: '42', name: 'Settings', properties: { from: 'push' } });
  client.group({ userId: '42', groupId: 'acme', traits: { name: 'Acme', employees: 12 } });
  client.alias({ userId: '42', previousId: 'anon-1' });
}

async function main() {
  const cio = new TrackClient(config.siteId, config.apiKey, { url: `${config.url}/api/v1`, retry: { maxRetries: 0 } });
  await track(cio);
  // strictMode: Customer.io answers 400 to an invalid call instead of logging it and answering 200.
  const cdp = new PipelinesClient(config.writeKey, {
    url: `${config.url}/v1`,
    strictMode: true,
    retry: { maxRetries: 0 },
  });
  await pipelines(cdp);
  const client = new Analytics({ writeKey: config.writeKey, host: config.url, maxRetries: 0, flushInterval: 60000 });
  let failed;
  client.on('error', (error) => {
    failed = error;
  });
  analytics(client);
  await client.closeAndFlush({ timeout: 20000 });
  report('cdp-analytics-node batch', failed);
}

main().catch((error) => {
  process.stderr.write(String(error && error.stack ? error.stack : error) + '\n');
  process.exit(1);
});
