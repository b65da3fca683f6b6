import { z } from "zod";
import { ValidationError } from "../../errors.js";
import { parseContract } from "../../schemas/contract.js";

/*
 * Intel PCS TCB Info (v2: SGX; v3: SGX and TDX) and Enclave Identity v2 JSON, as served by
 * /sgx/certification/v4/tcb, /tdx/certification/v4/tcb and .../qe/identity. Objects are loose:
 * these are Intel-signed documents and Intel adds descriptive fields (category, type) over time;
 * every field we rely on is required and typed.
 */

const hexBytes = (n: number) =>
  z.string().regex(new RegExp(`^[0-9a-fA-F]{${2 * n}}$`), `must be ${n} bytes of hex`);
const utcTime = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?Z$/, "must be an ISO 8601 UTC timestamp")
  .refine((s) => !Number.isNaN(Date.parse(s)), "must be a valid date");
const svn8 = z.number().int().min(0).max(255);
const svn16 = z.number().int().min(0).max(0xffff);
const advisoryIds = z.array(z.string().max(64)).max(1024).optional();
const components = z.array(z.looseObject({ svn: svn8 })).length(16, "must list 16 components");

const levelCommon = { tcbDate: utcTime, tcbStatus: z.string().max(64), advisoryIDs: advisoryIds };

const tcbLevelV3 = z.looseObject({
  tcb: z.looseObject({
    sgxtcbcomponents: components,
    pcesvn: svn16,
    tdxtcbcomponents: components.optional(),
  }),
  ...levelCommon,
});

const v2Components = Object.fromEntries(
  Array.from({ length: 16 }, (_, i) => [`sgxtcbcomp${String(i + 1).padStart(2, "0")}svn`, svn8]),
);
const tcbLevelV2 = z.looseObject({ tcb: z.looseObject({ ...v2Components, pcesvn: svn16 }), ...levelCommon });

const isvLevel = z.looseObject({ tcb: z.looseObject({ isvsvn: svn16 }), ...levelCommon });

const tdxModule = z.looseObject({
  mrsigner: hexBytes(48),
  attributes: hexBytes(8),
  attributesMask: hexBytes(8),
});

const infoCommon = {
  issueDate: utcTime,
  nextUpdate: utcTime,
  fmspc: hexBytes(6),
  pceId: hexBytes(2),
  tcbType: z.literal(0, "only tcbType 0 is defined"),
  tcbEvaluationDataNumber: z.number().int().min(0),
};

const tcbInfoV3Schema = z.looseObject({
  id: z.enum(["SGX", "TDX"]),
  version: z.literal(3),
  ...infoCommon,
  tdxModule: tdxModule.optional(),
  tdxModuleIdentities: z
    .array(tdxModule.extend({ id: z.string().max(16), tcbLevels: z.array(isvLevel).min(1) }))
    .optional(),
  tcbLevels: z.array(tcbLevelV3).min(1).max(4096),
});

const tcbInfoV2Schema = z.looseObject({
  version: z.literal(2),
  ...infoCommon,
  tcbLevels: z.array(tcbLevelV2).min(1).max(4096),
});

export interface TcbLevel {
  /** SGX TCB component SVNs 1..16. */
  sgxComponents: number[];
  pceSvn: number;
  /** TDX TCB component SVNs (TEE_TCB_SVN order); TDX TCB info only. */
  tdxComponents?: number[];
  tcbDate: string;
  tcbStatus: string;
  advisoryIds: string[];
}

export interface IsvTcbLevel {
  isvSvn: number;
  tcbDate: string;
  tcbStatus: string;
  advisoryIds: string[];
}

export interface TdxModuleIdentity {
  id: string;
  mrSigner: Uint8Array;
  attributes: Uint8Array;
  attributesMask: Uint8Array;
  tcbLevels: IsvTcbLevel[];
}

export interface TcbInfo {
  id: "SGX" | "TDX";
  version: 2 | 3;
  issueDate: Date;
  nextUpdate: Date;
  fmspc: Uint8Array;
  pceId: Uint8Array;
  tcbEvaluationDataNumber: number;
  tdxModule?: Omit<TdxModuleIdentity, "id" | "tcbLevels">;
  tdxModuleIdentities: TdxModuleIdentity[];
  tcbLevels: TcbLevel[];
}

export interface QeIdentity {
  id: "QE" | "QVE" | "TD_QE";
  version: 2;
  issueDate: Date;
  nextUpdate: Date;
  tcbEvaluationDataNumber: number;
  miscSelect: Uint8Array;
  miscSelectMask: Uint8Array;
  attributes: Uint8Array;
  attributesMask: Uint8Array;
  mrSigner: Uint8Array;
  isvProdId: number;
  tcbLevels: IsvTcbLevel[];
}

const qeIdentitySchema = z.looseObject({
  id: z.enum(["QE", "QVE", "TD_QE"]),
  version: z.literal(2, "only Enclave Identity v2 is supported"),
  issueDate: utcTime,
  nextUpdate: utcTime,
  tcbEvaluationDataNumber: z.number().int().min(0),
  miscselect: hexBytes(4),
  miscselectMask: hexBytes(4),
  attributes: hexBytes(16),
  attributesMask: hexBytes(16),
  mrsigner: hexBytes(32),
  isvprodid: svn16,
  tcbLevels: z.array(isvLevel).min(1).max(4096),
});

const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, "hex"));

function parseJsonObject(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new ValidationError(what, [{ path: "", rule: "must be valid JSON" }]);
  }
}

function isvLevels(levels: z.output<typeof isvLevel>[]): IsvTcbLevel[] {
  return levels.map((l) => ({
    isvSvn: l.tcb.isvsvn,
    tcbDate: l.tcbDate,
    tcbStatus: l.tcbStatus,
    advisoryIds: l.advisoryIDs ?? [],
  }));
}

/** Parses the `tcbInfo` object text; throws ValidationError naming the field. */
export function parseTcbInfo(text: string): TcbInfo {
  const what = "TCB info";
  const json = parseJsonObject(text, what);
  const version = (json as { version?: unknown } | null)?.version;
  if (version === 2) {
    const v2 = parseContract(tcbInfoV2Schema, json, what);
    return {
      id: "SGX",
      version: 2,
      issueDate: new Date(v2.issueDate),
      nextUpdate: new Date(v2.nextUpdate),
      fmspc: hex(v2.fmspc),
      pceId: hex(v2.pceId),
      tcbEvaluationDataNumber: v2.tcbEvaluationDataNumber,
      tdxModuleIdentities: [],
      tcbLevels: v2.tcbLevels.map((l) => {
        const tcb = l.tcb as Record<string, number>;
        return {
          sgxComponents: Array.from(
            { length: 16 },
            (_, i) => tcb[`sgxtcbcomp${String(i + 1).padStart(2, "0")}svn`],
          ),
          pceSvn: l.tcb.pcesvn,
          tcbDate: l.tcbDate,
          tcbStatus: l.tcbStatus,
          advisoryIds: l.advisoryIDs ?? [],
        };
      }),
    };
  }
  const v3 = parseContract(tcbInfoV3Schema, json, what);
  if (v3.id === "TDX") {
    v3.tcbLevels.forEach((l, i) => {
      if (!l.tcb.tdxtcbcomponents) {
        throw new ValidationError(what, [
          { path: `tcbLevels.${i}.tcb.tdxtcbcomponents`, rule: "required for TDX" },
        ]);
      }
    });
    if (!v3.tdxModule) throw new ValidationError(what, [{ path: "tdxModule", rule: "required for TDX" }]);
  }
  return {
    id: v3.id,
    version: 3,
    issueDate: new Date(v3.issueDate),
    nextUpdate: new Date(v3.nextUpdate),
    fmspc: hex(v3.fmspc),
    pceId: hex(v3.pceId),
    tcbEvaluationDataNumber: v3.tcbEvaluationDataNumber,
    tdxModule: v3.tdxModule && {
      mrSigner: hex(v3.tdxModule.mrsigner),
      attributes: hex(v3.tdxModule.attributes),
      attributesMask: hex(v3.tdxModule.attributesMask),
    },
    tdxModuleIdentities: (v3.tdxModuleIdentities ?? []).map((m) => ({
      id: m.id,
      mrSigner: hex(m.mrsigner),
      attributes: hex(m.attributes),
      attributesMask: hex(m.attributesMask),
      tcbLevels: isvLevels(m.tcbLevels),
    })),
    tcbLevels: v3.tcbLevels.map((l) => ({
      sgxComponents: l.tcb.sgxtcbcomponents.map((c) => c.svn),
      pceSvn: l.tcb.pcesvn,
      tdxComponents: l.tcb.tdxtcbcomponents?.map((c) => c.svn),
      tcbDate: l.tcbDate,
      tcbStatus: l.tcbStatus,
      advisoryIds: l.advisoryIDs ?? [],
    })),
  };
}

/** Parses the `enclaveIdentity` object text; throws ValidationError naming the field. */
export function parseQeIdentity(text: string): QeIdentity {
  const what = "QE identity";
  const q = parseContract(qeIdentitySchema, parseJsonObject(text, what), what);
  return {
    id: q.id,
    version: 2,
    issueDate: new Date(q.issueDate),
    nextUpdate: new Date(q.nextUpdate),
    tcbEvaluationDataNumber: q.tcbEvaluationDataNumber,
    miscSelect: hex(q.miscselect),
    miscSelectMask: hex(q.miscselectMask),
    attributes: hex(q.attributes),
    attributesMask: hex(q.attributesMask),
    mrSigner: hex(q.mrsigner),
    isvProdId: q.isvprodid,
    tcbLevels: isvLevels(q.tcbLevels),
  };
}
