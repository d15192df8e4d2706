import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { bytesToNumberLE } from '@noble/curves/utils';
import { sha512 } from '@noble/hashes/sha2';
import {
  calculateGenerator,
  cpace,
  DSI,
  DSI_ISK,
  generatorString,
  intermediateSessionKey,
  lvCat,
  macKey,
  confirmationTag,
  prependLen,
  scalarMult,
  scalarMultVfy,
  SHA512_BLOCK_BYTES,
  tagsEqual,
  transcriptIr,
} from '../../src/transport/cpace.js';
import { pairingChannel, pairingPassword } from '../../src/transport/pairing-code.js';
import type { DeviceId } from '../../src/store/types.js';

/** The draft's vectors, copied verbatim (hex) from draft-irtf-cfrg-cpace-21 and its testvectors.json. */
const vectors = JSON.parse(
  readFileSync(new URL('../fixtures/cpace-ristretto255-sha512.json', import.meta.url), 'utf8'),
) as Record<string, Record<string, unknown>>;
type Hexes = Record<string, string>;
const utils = (name: string) => vectors[name] as Hexes;
const suite = vectors.ristretto255_sha512 as Record<string, Record<string, unknown>>;
const gen = suite.calculate_generator as Hexes & { 'H.s_in_bytes': number; 'ZPAD length': number };
const run = suite.protocol as Hexes;
const ir = suite.isk_initiator_responder as Hexes;
const oc = suite.isk_parallel as Hexes;
const points = suite.scalar_mult as { Valid: Hexes; 'Invalid Y1': string; 'Invalid Y2': string };

const bytes = (hex: string | undefined): Uint8Array => {
  assert.ok(hex !== undefined, 'vector present');
  return Uint8Array.from(Buffer.from(hex, 'hex'));
};
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const same = (actual: Uint8Array, expectedHex: string | undefined, what: string) =>
  assert.equal(hex(actual), expectedHex?.toLowerCase(), what);
const utf8 = (s: string) => new TextEncoder().encode(s);

/** o_cat from the draft: only the parallel setting uses it, so only this test needs it. */
function oCat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const larger = Buffer.compare(Buffer.from(a), Buffer.from(b)) > 0;
  return Uint8Array.from(Buffer.concat([Buffer.from('oc'), ...(larger ? [a, b] : [b, a])]));
}

describe('CPace, draft-irtf-cfrg-cpace-21 test vectors', () => {
  it('prepend_len encodes lengths in LEB128, one byte below 128 and two from 128', () => {
    const v = utils('prepend_len');
    same(prependLen(new Uint8Array(0)), v["prepend_len(b'')"], "prepend_len(b'')");
    same(prependLen(utf8('1234')), v["prepend_len(b'1234')"], "prepend_len(b'1234')");
    const range = (n: number) => Uint8Array.from({ length: n }, (_, i) => i);
    same(prependLen(range(127)), v['prepend_len(bytes(range(127)))'], 'prepend_len of 127 bytes');
    same(prependLen(range(128)), v['prepend_len(bytes(range(128)))'], 'prepend_len of 128 bytes');
  });

  it('lv_cat, transcript_ir and the parallel transcript_oc match the draft', () => {
    const lv = utils('lv_cat');
    same(
      lvCat(utf8('1234'), utf8('5'), new Uint8Array(0), utf8('678')),
      lv["lv_cat(b'1234',b'5',b'',b'678')"],
      'lv_cat',
    );
    const t = utils('transcript_ir');
    same(
      transcriptIr(utf8('123'), utf8('PartyA'), utf8('234'), utf8('PartyB')),
      t["transcript_ir(b'123',b'PartyA',b'234',b'PartyB')"],
      'transcript_ir 1',
    );
    same(
      transcriptIr(utf8('3456'), utf8('PartyA'), utf8('2345'), utf8('PartyB')),
      t["transcript_ir(b'3456',b'PartyA',b'2345',b'PartyB')"],
      'transcript_ir 2',
    );
    const o = utils('o_cat');
    same(oCat(utf8('ABCD'), utf8('BCD')), o["o_cat(b'ABCD',b'BCD')"], 'o_cat 1');
    same(oCat(utf8('BCD'), utf8('ABCDE')), o["o_cat(b'BCD',b'ABCDE')"], 'o_cat 2');
    const toc = utils('transcript_oc');
    same(
      oCat(lvCat(utf8('123'), utf8('PartyA')), lvCat(utf8('234'), utf8('PartyB'))),
      toc["transcript_oc(b'123',b'PartyA',b'234',b'PartyB')"],
      'transcript_oc',
    );
  });

  it('calculate_generator: DSI, the zero padding, the generator string, its hash and g', () => {
    same(DSI, gen.DSI, 'G.DSI');
    assert.equal(SHA512_BLOCK_BYTES, gen['H.s_in_bytes']);
    const prs = bytes(gen.PRS);
    const str = generatorString(DSI, prs, bytes(gen.CI), bytes(gen.sid), SHA512_BLOCK_BYTES);
    same(str, gen['generator_string(G.DSI,PRS,CI,sid,H.s_in_bytes)'], 'generator_string');
    // The padding sits right after lv(DSI) || lv(PRS), prefixed by its own length byte.
    const zpadAt = prependLen(DSI).length + prependLen(prs).length;
    assert.equal(str[zpadAt], gen['ZPAD length'], 'len_zpad');
    assert.ok(str.subarray(zpadAt + 1, zpadAt + 1 + gen['ZPAD length']).every((b) => b === 0));
    same(sha512(str), gen['hash result'], 'hash of the generator string');
    same(calculateGenerator(prs, bytes(gen.CI), bytes(gen.sid)).toBytes(), gen['encoded generator g'], 'g');
    same(calculateGenerator(bytes(run.PRS), bytes(run.CI), bytes(run.sid)).toBytes(), run.g, 'g of the run');
  });

  it('a full initiator-responder run: Ya, Yb, K both ways, the transcript, the ISK input and ISK', () => {
    const inputs = {
      prs: bytes(run.PRS),
      ci: bytes(run.CI),
      sid: bytes(run.sid),
      adInitiator: bytes(run.ADa),
      adResponder: bytes(run.ADb),
    };
    const ya = bytesToNumberLE(bytes(run.ya));
    const yb = bytesToNumberLE(bytes(run.yb));
    const a = cpace(inputs, 'initiator', ya);
    const b = cpace(inputs, 'responder', yb);
    same(a.share, run.Ya, 'Ya');
    same(b.share, run.Yb, 'Yb');
    same(scalarMult(ya, calculateGenerator(inputs.prs, inputs.ci, inputs.sid)), run.Ya, 'scalar_mult(ya, g)');
    const k = scalarMultVfy(ya, b.share);
    same(k, run.K, 'scalar_mult_vfy(ya, Yb)');
    same(scalarMultVfy(yb, a.share), run.K, 'scalar_mult_vfy(yb, Ya)');

    const transcript = transcriptIr(a.share, inputs.adInitiator, b.share, inputs.adResponder);
    same(transcript, ir['transcript_ir(Ya,ADa,Yb,ADb)'], 'transcript_ir(Ya,ADa,Yb,ADb)');
    same(DSI_ISK, ir.DSI_ISK, 'G.DSI || b"_ISK"');
    const iskInput = Uint8Array.from([...lvCat(DSI_ISK, inputs.sid, k), ...transcript]);
    same(iskInput, ir['lv_cat(DSI_ISK,sid,K)||transcript_ir(Ya,ADa,Yb,ADb)'], 'ISK hash input');
    same(intermediateSessionKey(inputs.sid, k, transcript), run.ISK_IR, 'ISK_IR');

    const keysA = a.finish(b.share);
    const keysB = b.finish(a.share);
    same(keysA.isk, run.ISK_IR, 'initiator ISK');
    same(keysB.isk, run.ISK_IR, 'responder ISK');
    // The draft's confirmation: mac_key = H(b"CPaceMac" || sid || ISK), Ta over lv_cat(Ya, ADa), Tb over lv_cat(Yb, ADb).
    const key = macKey(inputs.sid, keysA.isk);
    same(key, hex(sha512(Uint8Array.from([...utf8('CPaceMac'), ...inputs.sid, ...keysA.isk]))), 'mac_key');
    same(keysA.ownTag, hex(confirmationTag(key, a.share, inputs.adInitiator)), 'Ta');
    same(keysB.ownTag, hex(confirmationTag(key, b.share, inputs.adResponder)), 'Tb');
    assert.ok(tagsEqual(keysA.ownTag, keysB.peerTag), 'the responder expects Ta');
    assert.ok(tagsEqual(keysB.ownTag, keysA.peerTag), 'the initiator expects Tb');
    assert.ok(!tagsEqual(keysA.ownTag, keysB.ownTag), 'the two tags differ, so one cannot be reflected');
  });

  it('the parallel-setting ISK and both optional session-id outputs match the draft', () => {
    const ya = bytes(run.Ya);
    const yb = bytes(run.Yb);
    const toc = oCat(lvCat(ya, bytes(run.ADa)), lvCat(yb, bytes(run.ADb)));
    same(toc, oc['transcript_oc(Ya,ADa,Yb,ADb)'], 'transcript_oc(Ya,ADa,Yb,ADb)');
    const input = Uint8Array.from([...lvCat(DSI_ISK, bytes(run.sid), bytes(run.K)), ...toc]);
    same(input, oc['lv_cat(DSI_ISK,sid,K)||transcript_oc(Ya,ADa,Yb,ADb)'], 'ISK hash input (parallel)');
    same(intermediateSessionKey(bytes(run.sid), bytes(run.K), toc), run.ISK_SY, 'ISK_SY');
    const tir = transcriptIr(ya, bytes(run.ADa), yb, bytes(run.ADb));
    same(sha512(Uint8Array.from([...utf8('CPaceSidOutput'), ...tir])), run.sid_output_ir, 'sid_output_ir');
    same(sha512(Uint8Array.from([...utf8('CPaceSidOutput'), ...toc])), run.sid_output_oc, 'sid_output_oc');
  });

  it('scalar_mult_vfy: the valid case, and G.I for an invalid encoding and for the identity', () => {
    const s = bytesToNumberLE(bytes(points.Valid.s));
    same(scalarMultVfy(s, bytes(points.Valid.X)), points.Valid['G.scalar_mult_vfy(s,X)'], 'valid');
    same(scalarMultVfy(s, bytes(points['Invalid Y1'])), '00'.repeat(32), 'Y_i1 gives G.I');
    same(scalarMultVfy(s, bytes(points['Invalid Y2'])), '00'.repeat(32), 'Y_i2 gives G.I');
  });

  it('a party receiving an invalid share or the identity aborts the run', () => {
    const party = cpace({ prs: utf8('x'), ci: utf8('ci'), sid: randomBytes(64) }, 'initiator');
    for (const bad of [bytes(points['Invalid Y1']), bytes(points['Invalid Y2']), new Uint8Array(7)]) {
      assert.throws(() => party.finish(bad), { code: 'PAIRING_FAILED' });
    }
  });
});

describe('CPace as pairing uses it', () => {
  const child = 'aa'.repeat(32) as DeviceId;
  const hub = 'bb'.repeat(32) as DeviceId;
  const inputs = (code: string, ci = pairingChannel(child, hub), sid = randomBytes(64)) => ({
    prs: pairingPassword(code),
    ci,
    sid,
  });

  it('CI is lv_cat(label, child ID, hub ID) and PRS the normalised code', () => {
    assert.equal(
      hex(pairingChannel(child, hub)),
      `16${hex(utf8('trosyn-sync pairing v1'))}20${'aa'.repeat(32)}20${'bb'.repeat(32)}`,
    );
    assert.equal(hex(pairingPassword('7k2m-qx4p-9tzb')), hex(utf8('7K2MQX4P9TZB')));
  });

  it('two parties with the same code, channel and session id derive the same key and accept each other', () => {
    const shared = inputs('7K2M-QX4P-9TZB');
    const a = cpace(shared, 'initiator');
    const b = cpace(shared, 'responder');
    const ka = a.finish(b.share);
    const kb = b.finish(a.share);
    assert.equal(hex(ka.isk), hex(kb.isk));
    assert.ok(tagsEqual(ka.ownTag, kb.peerTag) && tagsEqual(kb.ownTag, ka.peerTag));
  });

  it('a wrong code, another channel (a relay with its own certificates) or another session all fail confirmation', () => {
    const base = inputs('7K2M-QX4P-9TZB');
    const variants = [
      { ...base, prs: pairingPassword('7K2M-QX4P-9TZC') },
      { ...base, ci: pairingChannel(child, 'cc'.repeat(32) as DeviceId) },
      { ...base, sid: randomBytes(64) },
    ];
    for (const other of variants) {
      const a = cpace(base, 'initiator');
      const b = cpace(other, 'responder');
      const ka = a.finish(b.share);
      const kb = b.finish(a.share);
      assert.notEqual(hex(ka.isk), hex(kb.isk));
      assert.ok(!tagsEqual(ka.ownTag, kb.peerTag), 'the responder refuses the initiator');
    }
  });

  it('the worked example in PROTOCOL.md', () => {
    const ci = pairingChannel('3f'.repeat(32) as DeviceId, '0a'.repeat(32) as DeviceId);
    const prs = pairingPassword('7K2M-QX4P-9TZB');
    const sid = Uint8Array.from({ length: 64 }, (_, i) => i);
    const str = generatorString(DSI, prs, ci, sid, SHA512_BLOCK_BYTES);
    assert.equal(ci.length, 89);
    assert.equal(str.length, 283);
    assert.equal(str[prependLen(DSI).length + prependLen(prs).length], 96, 'len_zpad');
    same(
      sha512(str),
      'f9b73dbf25cfdcc608064af78e1366579c9c1daaffaa76e3f27fe900705f174c777370f70a2edc94f3aabc27a89e7790479f0e206491142da31c59387a9d6728',
      'hash',
    );
    same(
      calculateGenerator(prs, ci, sid).toBytes(),
      '20bdcd5ee29684498090982f561f1e9a917ca42185ad2e0813e619b0301f667a',
      'g',
    );
    const a = cpace({ prs, ci, sid }, 'initiator', bytesToNumberLE(bytes(run.ya)));
    const b = cpace({ prs, ci, sid }, 'responder', bytesToNumberLE(bytes(run.yb)));
    same(a.share, '6ee340b1fe4f0fb0b60539f121ff2a598774e2a45f8eefa51d4a6644b5c9070b', 'Ya');
    same(b.share, '6e4f0806539e3bf88325e8b1adbb05eaf94b5c06e925c9fc8be441a7b0af1d56', 'Yb');
    same(
      scalarMultVfy(bytesToNumberLE(bytes(run.ya)), b.share),
      'ee6c083395f28b2004adb53e2edf38323d83b018a54a863b9b6d28365942da22',
      'K',
    );
    const keys = a.finish(b.share);
    same(
      keys.isk,
      '8a5ac9d52c1083bf5b1f568c54693cebcb79f0f76bfade6d02edae7c07f81dfae2a81085d964bd14144aac8628b79ada2a25a851fde7e4510d567d601046c7cf',
      'ISK',
    );
    same(
      keys.ownTag,
      '0a67fd44cbca6d4f092965aee47e6c99abc5801085ec6b158994e0d7871ae67e72ee3b61788397a6894b68e4c92dd725795e90db9c4e28a5c780035f5e13e98d',
      'Ta',
    );
    same(
      keys.peerTag,
      '089368d4dab96fb2975e2d12ddada1b3ea163a87101c915ebf105c476747b23e558c530ab116198484edccfb14da951096b1d47751924ce3ebbc0f115e01ae36',
      'Tb',
    );
  });

  it('shares are fresh each time, so a recorded exchange cannot be replayed', () => {
    const shared = inputs('7K2M-QX4P-9TZB');
    assert.notEqual(hex(cpace(shared, 'initiator').share), hex(cpace(shared, 'initiator').share));
  });
});
