"""Writes gateway/tests/sdk-corpus/ from bodies captured with
capture_server.py (CAPTURE_ROOT/{segment,posthog-node,python,browser}/NNN.json):
the real bodies as sent, variants made from them, and the refusals the SDK
routes must keep. Then bless the expectations once, from the gateway as it is:
SLUICE_GOLDEN_BLESS=1 cargo test -p sluice-gateway --test sdk_golden.
"""
import base64, gzip, json, os, sys, urllib.parse
root = os.path.join(os.path.dirname(os.path.abspath(__file__)), '../../gateway/tests/sdk-corpus')
captures = sys.argv[1]
KEY = 'sk_test_team_a'
BASIC = 'Basic ' + base64.b64encode((KEY + ':').encode()).decode()
def cap(path):
    r = json.load(open(path)); b = base64.b64decode(r['body_b64'])
    h = {k: v for k, v in r['headers'].items() if k in ('content-type', 'content-encoding', 'authorization')}
    return r['path'], h, b
def write(name, description, path, headers, body):
    d = os.path.join(root, name); os.makedirs(d, exist_ok=True)
    if isinstance(body, str): body = body.encode()
    json.dump({'description': description, 'method': 'POST', 'path': path, 'headers': headers},
              open(os.path.join(d, 'request.json'), 'w'), indent=2)
    open(os.path.join(d, 'request.json'), 'a').write('\n')
    open(os.path.join(d, 'body'), 'wb').write(body)
def gz(b):
    if isinstance(b, str): b = b.encode()
    return gzip.compress(b, mtime=0)
J = {'content-type': 'application/json'}

# Real SDK bodies, as sent.
p, h, b = cap(os.path.join(captures, 'segment/001.json'))
write('segment-node-batch', '@segment/analytics-node 3.1.0: /v1/batch, Basic auth, 3 track + identify + page', p, h, b)
seg = json.loads(b)
p, h, b = cap(os.path.join(captures, 'posthog-node/001.json'))
write('posthog-node-batch-gzip', 'posthog-node 5.70.0: /batch/, Content-Encoding: gzip, api_key in the body', p, h, b)
phn = json.loads(gzip.decompress(b))
p, h, b = cap(os.path.join(captures, 'python/001.json'))
write('posthog-python-batch-gzip', 'posthog (PyPI) 7.91.1: /batch/, gzip, spaced JSON', p, h, b)
p, h, b = cap(os.path.join(captures, 'browser/001.json'))
write('posthog-js-e-identify', 'posthog-js in Chromium: /e/, text/plain batch holding $identify', p, h, b)
p, h, b = cap(os.path.join(captures, 'browser/002.json'))
write('posthog-js-e-batch', 'posthog-js in Chromium: /e/, text/plain batch of captures', p, h, b)
js = json.loads(gzip.decompress(b))

# Variants the routes accept, made from the real bodies.
write('segment-batch-gzip', 'the analytics-node batch gzipped (Content-Encoding: gzip)', '/v1/batch',
      {**J, 'content-encoding': 'gzip', 'authorization': BASIC}, gz(json.dumps(seg, separators=(',', ':'))))
track = dict(seg['batch'][0]); track.pop('type'); track['writeKey'] = KEY
write('segment-track-single', '/v1/track with writeKey in the body (analytics.js style), no Authorization', '/v1/track', J,
      json.dumps(track, separators=(',', ':')))
ident = dict(seg['batch'][3]); ident['sentAt'] = '2026-12-07T16:10:31.000Z'
write('segment-identify-single', '/v1/identify with its own sentAt, Basic auth', '/v1/identify', {**J, 'authorization': BASIC},
      json.dumps(ident, separators=(',', ':')))
write('segment-page-name-category', '/v1/page: name and category folded into properties unless present', '/v1/page', {**J, 'authorization': BASIC},
      '{"userId":"user-0","name":"Pricing","category":"Docs","properties":{"category":"Kept","url":"https://example.com/p"},"messageId":"0190d6a8-0000-7000-8000-00000000000a","timestamp":"2026-12-07T16:10:00.000Z"}')
write('segment-group-alias-screen', 'group, alias and screen calls in one batch; numeric userId; null timestamp uses originalTimestamp', '/v1/batch', {**J, 'authorization': BASIC},
      '{"batch":[{"type":"group","userId":"u-1","groupId":"g-1","traits":{"plan":"pro","seats":3}},'
      '{"type":"alias","userId":"u-2","previousId":"a-9","messageId":"m-alias"},'
      '{"type":"screen","userId":42,"name":"Home","properties":null,"timestamp":null,"originalTimestamp":"2026-12-07T16:09:00.000Z"}],'
      '"sentAt":"2026-12-07T16:10:01.000Z"}')
write('segment-edge-values', 'unicode escapes, floats, duplicate keys, nested objects, context with extra fields, unmapped top-level fields', '/v1/batch', {**J, 'authorization': BASIC},
      '{"batch":[{"type":"track","event":"Caf\\u00e9 \\"Ordered\\"","userId":"u\\u00e9","messageId":"m-1",'
      '"properties":{"z":1.50,"a":{"y":[1,2.0,1e3],"b":"\\u2603"},"big":12345678901234567890,"neg":-0},'
      '"context":{"ip":"1.2.3.4","library":{"version":"1","name":"x"}},"channel":"server","_metadata":{"k":true},'
      '"integrations":{"All":false},"timestamp":"2026-12-07T16:10:00.000Z","userId":"u-dup"}],'
      '"sentAt":"2026-12-07T16:10:02.000Z","context":{"ignored":true}}')
write('segment-bad-messages', 'messages that cannot be translated (dead-lettered, 200) next to contract rejects', '/v1/batch', {**J, 'authorization': BASIC},
      '{"batch":["not an object",{"type":"launch","userId":"u"},{"type":"track","userId":"u","writeKey":"sk_secret"},'
      '{"type":"track","event":"E"},{"event":"E","userId":"u"},'
      '{"type":"track","event":"Old","userId":"u","timestamp":"2026-09-01T00:00:00.000Z"},'
      '{"type":"track","event":"E","userId":"u","timestamp":"soon"},'
      '{"type":"track","event":"E","userId":"u","properties":"text"},'
      '{"type":"track","event":"E","userId":"u","context":[1]}]}')

single = dict(phn['batch'][0]); single['api_key'] = KEY
write('posthog-e-single-event', 'one event object with api_key (curl style) to /e', '/e', J, json.dumps(single, separators=(',', ':')))
arr = [dict(e) for e in js['batch']]
for e in arr: e['properties'] = {**e['properties'], 'token': KEY}
arr_json = json.dumps(arr, separators=(',', ':'))
write('posthog-bare-array-capture', 'older posthog-js: a bare array with the token in properties, to /capture/', '/capture/', J, arr_json)
form = 'data=' + urllib.parse.quote(base64.b64encode(arr_json.encode()).decode(), safe='') + '&compression=base64'
write('posthog-form-base64', 'older posthog-js: form body data=<base64 JSON>, compression=base64 in the query', '/e/?compression=base64&ver=1.0',
      {'content-type': 'application/x-www-form-urlencoded'}, form)
write('posthog-form-plain', 'form body data=<JSON> to /track', '/track', {'content-type': 'application/x-www-form-urlencoded'},
      'data=' + urllib.parse.quote(arr_json, safe=''))
write('posthog-gzip-js-query', 'older posthog-js: gzip body announced by ?compression=gzip-js, to /i/v0/e/', '/i/v0/e/?compression=gzip-js&ver=1.0',
      {'content-type': 'text/plain'}, gz(json.dumps(js, separators=(',', ':'))))
write('posthog-gzip-sniffed', 'posthog-js now: gzip body announced nowhere, sniffed', '/e/', {'content-type': 'text/plain'}, gz(json.dumps(js, separators=(',', ':'))))
write('posthog-edge-values', 'offset instead of timestamp, distinct_id in properties, numeric distinct_id, person ops at top level and in properties, duplicate keys, null properties, per-event sent_at, unmapped fields',
      '/batch', J,
      '{"api_key":"' + KEY + '","sent_at":"2026-12-07T16:10:05.000Z","batch":['
      '{"event":"clicked","offset":300,"uuid":"custom-id","properties":{"distinct_id":12,"token":"sk_x","z":1.50,"a":"\\u00e9"}},'
      '{"event":"$identify","distinct_id":"d-1","$set":{"email":"x@example.com"},"$set_once":{"first":1},"$unset":["old"],'
      '"properties":{"$set":{"kept":true},"b":2},"uuid":"0190d6a8-0000-7000-8000-0000000000aa","timestamp":"2026-12-07T16:10:00.000Z","type":"capture","library":"web","library_version":"1.2","$groups":{"company":"c-1"}},'
      '{"event":"nulls","distinct_id":"d-2","properties":null,"timestamp":"2026-12-07T16:10:00.000Z","sent_at":"2026-12-07T16:10:03.000Z","event":"renamed"},'
      '{"event":"plain","distinct_id":"d-3","timestamp":1796659800000,"token":"sk_other","properties":{"token":"sk_y","$set_once":{"p":1}}}]}')
write('posthog-bad-messages', 'events that cannot be translated (dead-lettered, 200), key never stored', '/batch/', J,
      '{"api_key":"' + KEY + '","batch":[3,{"event":"e","api_key":"sk_x"},{"distinct_id":"d"},{"event":"","distinct_id":"d"},'
      '{"event":"e","distinct_id":""},{"event":"e","distinct_id":"d","timestamp":"2026-01-01T00:00:00Z"},{"event":"e","distinct_id":"d","properties":[1]}]}')

# Request-level refusals.
write('segment-malformed-json', 'cut-off JSON', '/v1/batch', {**J, 'authorization': BASIC}, '{"batch":[{"type":"track",')
write('segment-not-a-batch', 'a native body sent to /v1/batch', '/v1/batch', {**J, 'authorization': BASIC}, '{"events":[]}')
write('segment-not-an-object', 'a JSON array to /v1/track', '/v1/track', {**J, 'authorization': BASIC}, '[1,2]')
nokey = {k: v for k, v in seg.items() if k != 'writeKey'}
write('segment-missing-key', 'no Authorization and no writeKey', '/v1/batch', J, json.dumps(nokey, separators=(',', ':')))
write('segment-body-key', 'no Authorization: the writeKey analytics-node also puts in the body', '/v1/batch', J, json.dumps(seg, separators=(',', ':')))
write('segment-unknown-key', 'Basic auth with a key the gateway does not know', '/v1/batch',
      {**J, 'authorization': 'Basic ' + base64.b64encode(b'sk_unknown_key_000:').decode()}, json.dumps(seg, separators=(',', ':')))
write('segment-corrupt-gzip', 'Content-Encoding: gzip over bytes that are not gzip', '/v1/batch', {**J, 'content-encoding': 'gzip', 'authorization': BASIC}, b'\x1f\x8b\x08\x00garbage')
write('segment-unknown-content-encoding', 'Content-Encoding: br', '/v1/batch', {**J, 'content-encoding': 'br', 'authorization': BASIC}, '{"batch":[]}')
write('segment-invalid-utf8', 'invalid UTF-8 inside a string', '/v1/batch', {**J, 'authorization': BASIC}, b'{"batch":[{"type":"track","event":"\xff\xfe","userId":"u"}]}')
write('segment-empty-batch', 'an empty batch', '/v1/batch', {**J, 'authorization': BASIC}, '{"batch":[]}')
write('posthog-malformed-json', 'cut-off JSON', '/batch/', J, '{"api_key":"' + KEY + '","batch":[{"event":')
write('posthog-not-a-batch', 'a number', '/batch/', J, '42')
write('posthog-batch-not-array', '`batch` is not an array', '/batch/', J, '{"api_key":"' + KEY + '","batch":{"event":"e"}}')
write('posthog-missing-key', 'no api_key or token anywhere', '/batch/', J, '{"batch":[{"event":"e","distinct_id":"d"}]}')
write('posthog-unknown-key', 'an api_key the gateway does not know', '/batch/', J, '{"api_key":"sk_unknown_key_000","batch":[{"event":"e","distinct_id":"d"}]}')
write('posthog-bearer-unknown', 'a bearer header wins over the body key and is checked first', '/e', {**J, 'authorization': 'Bearer sk_unknown_key_000'}, json.dumps(single, separators=(',', ':')))
write('posthog-form-without-data', 'a form body without data=', '/e/', {'content-type': 'application/x-www-form-urlencoded'}, 'compression=base64&other=1')
write('posthog-form-bad-base64', 'data= that is neither JSON nor base64', '/e/', {'content-type': 'application/x-www-form-urlencoded'}, 'data=%25%25%25not-base64')
write('posthog-unsupported-compression', '?compression=lz64', '/e/?compression=lz64', {'content-type': 'text/plain'}, '{}')
write('posthog-corrupt-gzip', 'gzip magic then garbage, sniffed', '/e/', {'content-type': 'text/plain'}, b'\x1f\x8b\x08\x00garbage')
write('posthog-empty-batch', 'an empty batch', '/batch/', J, '{"api_key":"' + KEY + '","batch":[]}')
print(len(os.listdir(root)))

# What serde_json's Value parser refused before translation stopped building
# value trees: the routes must keep refusing it with the same answer.
deep = '[' * 130 + '1' + ']' * 130
write('segment-too-deep', 'properties nested deeper than 128', '/v1/batch', {**J, 'authorization': BASIC},
      '{"batch":[{"type":"track","event":"E","userId":"u","properties":{"p":' + deep + '}}]}')
write('segment-lone-surrogate', 'a lone UTF-16 surrogate escape in a property (a cut emoji)', '/v1/batch', {**J, 'authorization': BASIC},
      '{"batch":[{"type":"track","event":"E","userId":"u","properties":{"p":"\\ud83d cut"}}]}')
write('segment-surrogate-pair', 'an escaped surrogate pair (Python json.dumps writes emoji so) is fine', '/v1/batch', {**J, 'authorization': BASIC},
      '{"batch":[{"type":"track","event":"E","userId":"u","messageId":"m-1","timestamp":"2026-12-07T16:10:00.000Z","properties":{"p":"\\ud83d\\ude00 \\u00e9 \\\\ud800"}}]}')
write('posthog-number-out-of-range', 'a number beyond f64 in properties', '/batch/', J,
      '{"api_key":"' + KEY + '","batch":[{"event":"e","distinct_id":"d","properties":{"n":1e400}}]}')
write('posthog-too-deep-context-field', 'an unmapped top-level field nested deeper than 128', '/batch/', J,
      '{"api_key":"' + KEY + '","batch":[{"event":"e","distinct_id":"d","$groups":' + deep + '}]}')
