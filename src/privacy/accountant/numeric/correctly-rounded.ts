/**
 * Natural logarithm and exponential rounded to nearest, via double-double arithmetic.
 *
 * Why: the RDP series ends in log-space additions and subtractions that cancel (e.g. log A ≈ 3e-5
 * out of terms near ±25), so a one-ulp difference in a single `log` moves the result by ~1e-10
 * relative. Opacus runs on glibc, whose log and exp are (almost always) correctly rounded; V8's
 * Math.log / Math.exp are fdlibm ports that are off by one ulp in a few percent of near-tie cases.
 * Rounding correctly here reproduces glibc's results and keeps agreement with Opacus near 1e-15.
 */

// ---- double-double primitives (Dekker / Knuth) ----
const SPLITTER = 134217729; // 2^27 + 1

function twoSum(a: number, b: number, out: Float64Array): void {
  const s = a + b;
  const bb = s - a;
  out[0] = s;
  out[1] = a - (s - bb) + (b - bb);
}

function twoProd(a: number, b: number, out: Float64Array): void {
  const p = a * b;
  let t = SPLITTER * a;
  const ah = t - (t - a);
  const al = a - ah;
  t = SPLITTER * b;
  const bh = t - (t - b);
  const bl = b - bh;
  out[0] = p;
  out[1] = ah * bh - p + ah * bl + al * bh + al * bl;
}

const tmp = new Float64Array(2);
const tmp2 = new Float64Array(2);

/** (ah, al) + (bh, bl) into out. */
function ddAdd(ah: number, al: number, bh: number, bl: number, out: Float64Array): void {
  twoSum(ah, bh, tmp);
  const s = tmp[0];
  let e = tmp[1];
  twoSum(al, bl, tmp2);
  e += tmp2[0];
  let hi = s + e;
  let lo = e - (hi - s);
  lo += tmp2[1];
  const h2 = hi + lo;
  lo = lo - (h2 - hi);
  hi = h2;
  out[0] = hi;
  out[1] = lo;
}

/** (ah, al) · (bh, bl) into out. */
function ddMul(ah: number, al: number, bh: number, bl: number, out: Float64Array): void {
  twoProd(ah, bh, tmp);
  const p = tmp[0];
  const e = tmp[1] + (ah * bl + al * bh);
  const hi = p + e;
  out[0] = hi;
  out[1] = e - (hi - p);
}

/** (ah, al) / (bh, bl) into out (one Newton correction of the double quotient). */
function ddDiv(ah: number, al: number, bh: number, bl: number, out: Float64Array): void {
  const q1 = ah / bh;
  ddMul(q1, 0, bh, bl, out);
  const rh = out[0];
  const rl = out[1];
  ddAdd(ah, al, -rh, -rl, out);
  const q2 = out[0] / bh;
  const hi = q1 + q2;
  out[0] = hi;
  out[1] = q2 - (hi - q1);
}

// ln 2 as a double-double.
const LN2_HI = 0.6931471805599453;
const LN2_LO = 2.3190468138462996e-17;

const TABLE_BITS = 7;
const TABLE_SIZE = 1 << TABLE_BITS;
const acc = new Float64Array(2);
const pw = new Float64Array(2);
const term = new Float64Array(2);
const s2 = new Float64Array(2);

/** log1p(r) in double-double for a small double-double r, by 2·atanh(r / (2 + r)). */
const sArg = new Float64Array(2);
function ddLog1pSmall(rh: number, rl: number, out: Float64Array, terms: number): void {
  const s = sArg;
  ddAdd(2, 0, rh, rl, s);
  ddDiv(rh, rl, s[0], s[1], s);
  ddMul(s[0], s[1], s[0], s[1], s2);
  acc[0] = s[0];
  acc[1] = s[1];
  pw[0] = s[0];
  pw[1] = s[1];
  for (let n = 1; n <= terms; n++) {
    ddMul(pw[0], pw[1], s2[0], s2[1], pw);
    ddDiv(pw[0], pw[1], 2 * n + 1, 0, term);
    ddAdd(acc[0], acc[1], term[0], term[1], acc);
  }
  out[0] = 2 * acc[0];
  out[1] = 2 * acc[1];
}

// log(1 + j/128) for j = 0..127, as double-doubles (computed once with a long series).
const TABLE_HI = new Float64Array(TABLE_SIZE);
const TABLE_LO = new Float64Array(TABLE_SIZE);
{
  const out = new Float64Array(2);
  for (let j = 0; j < TABLE_SIZE; j++) {
    ddLog1pSmall(j / TABLE_SIZE, 0, out, 40);
    TABLE_HI[j] = out[0];
    TABLE_LO[j] = out[1];
  }
}

const bits = new Float64Array(1);
const words = new Uint32Array(bits.buffer);
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const HI_WORD = LITTLE_ENDIAN ? 1 : 0;

const logOut = new Float64Array(2);

/** Natural log rounded to nearest (IEEE semantics for 0, negatives, NaN and infinities). */
export function crLog(x: number): number {
  if (!(x > 0)) return x === 0 ? -Infinity : NaN;
  if (x === Infinity) return Infinity;
  if (x === 1) return 0;
  let scale = 0;
  if (x < 2.2250738585072014e-308) {
    x *= 18014398509481984; // 2^54, brings subnormals into the normal range
    scale = -54;
  }
  bits[0] = x;
  const hiWord = words[HI_WORD];
  const k = ((hiWord >>> 20) & 0x7ff) - 1023 + scale;
  words[HI_WORD] = (hiWord & 0x000fffff) | 0x3ff00000; // mantissa m in [1, 2)
  const m = bits[0];
  const j = Math.floor((m - 1) * TABLE_SIZE);
  const c = 1 + j / TABLE_SIZE;
  // r = (m - c) / c; m - c is exact (Sterbenz).
  const out = logOut;
  ddDiv(m - c, 0, c, 0, out);
  // log1p(r) = 2·atanh(s), s = r/(2+r), |s| < 1/256: 2s + 2s³/3 in double-double, the rest in double.
  const sv = sArg;
  ddAdd(2, 0, out[0], out[1], sv);
  ddDiv(out[0], out[1], sv[0], sv[1], sv);
  const sh = sv[0];
  const sl = sv[1];
  ddMul(sh, sl, sh, sl, s2);
  const z = s2[0];
  ddMul(s2[0], s2[1], sh, sl, term);
  ddDiv(term[0], term[1], 3, 0, term);
  const rest = sh * z * z * (1 / 5 + z * (1 / 7 + z * (1 / 9 + z / 11)));
  ddAdd(term[0], term[1], rest, 0, term);
  ddAdd(sh, sl, term[0], term[1], out);
  out[0] *= 2;
  out[1] *= 2;
  ddAdd(out[0], out[1], TABLE_HI[j], TABLE_LO[j], out);
  if (k !== 0) {
    twoProd(k, LN2_HI, tmp);
    const kh = tmp[0];
    const kl = tmp[1] + k * LN2_LO;
    ddAdd(out[0], out[1], kh, kl, out);
  }
  return out[0] + out[1];
}

// 2^(j/64) for j = 0..63 as double-doubles, and ln2/64 as a double-double.
const EXP_TABLE_BITS = 6;
const EXP_TABLE_SIZE = 1 << EXP_TABLE_BITS;
const LN2_64_HI = LN2_HI / EXP_TABLE_SIZE;
const LN2_64_LO = LN2_LO / EXP_TABLE_SIZE;
const INV_LN2_64 = EXP_TABLE_SIZE / LN2_HI;
const EXP_HI = new Float64Array(EXP_TABLE_SIZE);
const EXP_LO = new Float64Array(EXP_TABLE_SIZE);
const expOut = new Float64Array(2);
const expR = new Float64Array(2);

/** exp(rh + rl) for |r| <= ~0.35 in double-double: Taylor series of exp(r/256), squared 8 times. */
function ddExpSlow(rh: number, rl: number, out: Float64Array): void {
  const h = rh / 256;
  const l = rl / 256;
  const p = new Float64Array([1, 0]);
  out[0] = 1;
  out[1] = 0;
  for (let n = 1; n <= 12; n++) {
    ddMul(p[0], p[1], h, l, p);
    ddDiv(p[0], p[1], n, 0, p);
    ddAdd(out[0], out[1], p[0], p[1], out);
  }
  for (let i = 0; i < 8; i++) ddMul(out[0], out[1], out[0], out[1], out);
}
{
  const out = new Float64Array(2);
  for (let j = 0; j < EXP_TABLE_SIZE; j++) {
    // 2^(j/64) = exp(j·ln2/64), with the argument as a double-double.
    twoProd(j, LN2_64_HI, tmp);
    ddExpSlow(tmp[0], tmp[1] + j * LN2_64_LO, out);
    EXP_HI[j] = out[0];
    EXP_LO[j] = out[1];
  }
}

/** exp(x) rounded to nearest (normal results; results below 2^-1022 may differ in the last bit). */
export function crExp(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x > 709.782712893384) return Infinity;
  if (x < -745.1332191019412) return 0;
  if (x === 0) return 1;
  // x = (64k + j)·ln2/64 + r with |r| <= ln2/128, so exp(x) = 2^k · 2^(j/64) · exp(r).
  const n = Math.round(x * INV_LN2_64);
  const j = ((n % EXP_TABLE_SIZE) + EXP_TABLE_SIZE) % EXP_TABLE_SIZE;
  const k = (n - j) / EXP_TABLE_SIZE;
  twoProd(n, LN2_64_HI, tmp);
  const nh = tmp[0];
  const nl = tmp[1] + n * LN2_64_LO;
  ddAdd(x, 0, -nh, -nl, expR);
  const rh = expR[0];
  const rl = expR[1];
  // exp(r) = 1 + r + r²/2 + tail; the tail (< 3e-8) needs only double precision.
  const tail = rh * rh * rh * (1 / 6 + rh * (1 / 24 + rh * (1 / 120 + rh * (1 / 720 + rh / 5040))));
  ddMul(rh, rl, rh, rl, expOut);
  ddAdd(expOut[0] / 2, expOut[1] / 2, tail, 0, expOut);
  ddAdd(expOut[0], expOut[1], rh, rl, expOut);
  ddAdd(1, 0, expOut[0], expOut[1], expOut);
  ddMul(expOut[0], expOut[1], EXP_HI[j], EXP_LO[j], expOut);
  // Scale by 2^k in two exact steps (k may lie just past the exponent range of one power).
  const k1 = Math.trunc(k / 2);
  return (expOut[0] + expOut[1]) * 2 ** k1 * 2 ** (k - k1);
}
