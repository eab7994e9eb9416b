/**
 * A Solana cluster for tests: an in-process LiteSVM holding a 6-decimal USDC-like mint (and
 * a second mint), a payer with tokens, a treasury owner with its associated token account
 * and a funded fee payer; plus a small JSON-RPC stand-in over HTTP that answers, from that VM
 * and in Solana's JSON-RPC shapes, what the official `@x402/svm` client asks
 * (`getAccountInfo`, `getLatestBlockhash`) and what the hub's `rpcSvmChain` asks
 * (`simulateTransaction`, `sendTransaction` with its preflight, `getSignatureStatuses`,
 * `isBlockhashValid`), so that a hub in another process settles on the VM.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { generateKeyPairSync } from "node:crypto";
import { LiteSVM } from "litesvm";
import {
  createKeyPairSignerFromBytes,
  generateKeyPairSigner,
  getBase64Encoder,
  getSignatureFromTransaction,
  getTransactionDecoder,
  none,
  some,
  type Address,
  type KeyPairSigner,
  type Signature,
} from "@solana/kit";
import {
  AccountState,
  findAssociatedTokenPda,
  getMintEncoder,
  getTokenDecoder,
  getTokenEncoder,
  TOKEN_PROGRAM_ADDRESS,
} from "@solana-program/token";

/** The devnet id: the official client accepts only the public clusters' ids, and reaches this VM through `rpcUrl`. */
export const DEVNET = "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1";

/** A test cluster and its accounts. */
export interface SolanaWorld {
  svm: LiteSVM;
  /** URL of the JSON-RPC stand-in. */
  rpcUrl: string;
  mint: Address;
  /** Another 6-decimal mint, with the payer funded in it too. */
  otherMint: Address;
  payer: KeyPairSigner;
  /** The treasury's owner (`payTo`). */
  treasury: KeyPairSigner;
  /** The fee payer, as its 64-byte secret key and as a kit signer of the same key. */
  feePayerSecret: Uint8Array;
  feePayer: KeyPairSigner;
  /** An unrelated wallet. */
  stranger: KeyPairSigner;
  /** The associated token account of `owner` for `mint` (default the main mint). */
  ata(owner: Address, mint?: Address): Promise<Address>;
  /** A token account's balance, or null when it does not exist. */
  tokenBalance(account: Address): bigint | null;
  /** Sets a token account's balance. */
  setTokenBalance(owner: Address, amount: bigint, mint?: Address): Promise<void>;
  close(): Promise<void>;
}

/** A 64-byte Ed25519 secret key (seed, then public key), as `solana-keygen` writes it. */
function secretKey(): Uint8Array {
  const jwk = generateKeyPairSync("ed25519").privateKey.export({ format: "jwk" });
  return new Uint8Array([...Buffer.from(jwk.d as string, "base64url"), ...Buffer.from(jwk.x as string, "base64url")]);
}

/** LiteSVM's transaction errors without fields, by number, as JSON-RPC names them. */
const TX_ERRORS = (
  "AccountInUse AccountLoadedTwice AccountNotFound ProgramAccountNotFound InsufficientFundsForFee InvalidAccountForFee " +
  "AlreadyProcessed BlockhashNotFound CallChainTooDeep MissingSignatureForFee InvalidAccountIndex SignatureFailure " +
  "InvalidProgramForExecution SanitizeFailure ClusterMaintenance AccountBorrowOutstanding WouldExceedMaxBlockCostLimit " +
  "UnsupportedVersion InvalidWritableAccount WouldExceedMaxAccountCostLimit WouldExceedAccountDataBlockLimit " +
  "TooManyAccountLocks AddressLookupTableNotFound InvalidAddressLookupTableOwner InvalidAddressLookupTableData " +
  "InvalidAddressLookupTableIndex InvalidRentPayingAccount WouldExceedMaxVoteCostLimit WouldExceedAccountDataTotalLimit " +
  "MaxLoadedAccountsDataSizeExceeded ResanitizationNeeded InvalidLoadedAccountsDataSizeLimit UnbalancedTransaction " +
  "ProgramCacheHitMaxLimit CommitCancelled"
).split(" ");

/** LiteSVM's instruction errors without fields, by number, as JSON-RPC names them. */
const IX_ERRORS = (
  "GenericError InvalidArgument InvalidInstructionData InvalidAccountData AccountDataTooSmall InsufficientFunds " +
  "IncorrectProgramId MissingRequiredSignature AccountAlreadyInitialized UninitializedAccount UnbalancedInstruction " +
  "ModifiedProgramId ExternalAccountLamportSpend ExternalAccountDataModified ReadonlyLamportChange ReadonlyDataModified " +
  "DuplicateAccountIndex ExecutableModified RentEpochModified NotEnoughAccountKeys AccountDataSizeChanged " +
  "AccountNotExecutable AccountBorrowFailed AccountBorrowOutstanding DuplicateAccountOutOfSync InvalidError " +
  "ExecutableDataModified ExecutableLamportChange ExecutableAccountNotRentExempt UnsupportedProgramId CallDepth " +
  "MissingAccount ReentrancyNotAllowed MaxSeedLengthExceeded InvalidSeeds InvalidRealloc ComputationalBudgetExceeded " +
  "PrivilegeEscalation ProgramEnvironmentSetupFailure ProgramFailedToComplete ProgramFailedToCompile Immutable " +
  "IncorrectAuthority AccountNotRentExempt InvalidAccountOwner ArithmeticOverflow UnsupportedSysvar IllegalOwner " +
  "MaxAccountsDataAllocationsExceeded MaxAccountsExceeded MaxInstructionTraceLengthExceeded " +
  "BuiltinProgramsMustConsumeComputeUnits BorshIoError"
).split(" ");

/** A LiteSVM instruction error as JSON-RPC writes it (`"InvalidArgument"`, `{ Custom: 1 }`). */
function rpcInstructionError(err: unknown): unknown {
  if (typeof err === "number") return IX_ERRORS[err] ?? "GenericError";
  const e = err as { code?: number; toString(): string };
  if (typeof e.code === "number") return { Custom: e.code };
  return { BorshIoError: String(e) };
}

/** A LiteSVM transaction error as JSON-RPC writes it (`"BlockhashNotFound"`, `{ InstructionError: [2, { Custom: 1 }] }`). */
function rpcTransactionError(err: unknown): unknown {
  if (typeof err === "number") return TX_ERRORS[err] ?? "SanitizeFailure";
  const e = err as { index?: number; accountIndex?: number; err?: () => unknown };
  if (typeof e.err === "function") return { InstructionError: [e.index, rpcInstructionError(e.err())] };
  if (typeof e.index === "number") return { DuplicateInstruction: e.index };
  if (typeof e.accountIndex === "number") return { InsufficientFundsForRent: { account_index: e.accountIndex } };
  return "SanitizeFailure";
}

/** What LiteSVM made of a transaction: its error (JSON-RPC shape, null on success), logs and compute units. */
function outcomeOf(result: unknown): { err: unknown; logs: string[]; unitsConsumed: number } {
  type Meta = { logs(): string[]; computeUnitsConsumed(): bigint };
  // A failure and a simulation carry their metadata in meta(); a success is its own metadata.
  const r = result as Meta & { err?: () => unknown; meta?: () => Meta };
  const meta = typeof r.meta === "function" ? r.meta() : r;
  return {
    err: typeof r.err === "function" ? rpcTransactionError(r.err()) : null,
    logs: meta.logs(),
    unitsConsumed: Number(meta.computeUnitsConsumed()),
  };
}

/** A base64 wire transaction (as `sendTransaction` and `simulateTransaction` take it) as LiteSVM takes it. */
function decodeWire(wire: unknown): Parameters<LiteSVM["sendTransaction"]>[0] {
  if (typeof wire !== "string") throw new Error("the transaction is a base64 string");
  return getTransactionDecoder().decode(getBase64Encoder().encode(wire)) as never;
}

/** A JSON-RPC error reply. */
class RpcFault extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly data?: unknown,
  ) {
    super(message);
  }
}

/** Starts a test cluster with its RPC stand-in. */
export async function solanaWorld(): Promise<SolanaWorld> {
  const svm = new LiteSVM();
  const [mintAuthority, payer, treasury, stranger, mintKey, otherMintKey] = (await Promise.all(
    Array.from({ length: 6 }, () => generateKeyPairSigner()),
  )) as [KeyPairSigner, KeyPairSigner, KeyPairSigner, KeyPairSigner, KeyPairSigner, KeyPairSigner];
  const feePayerSecret = secretKey();
  const feePayer = await createKeyPairSignerFromBytes(feePayerSecret);
  const mint = mintKey.address;
  const otherMint = otherMintKey.address;
  const rent = (n: number) => svm.minimumBalanceForRentExemption(BigInt(n));
  for (const m of [mint, otherMint]) {
    svm.setAccount({
      address: m,
      data: new Uint8Array(
        getMintEncoder().encode({
          mintAuthority: some(mintAuthority.address),
          supply: 1_000_000_000_000n,
          decimals: 6,
          isInitialized: true,
          freezeAuthority: none(),
        }),
      ),
      executable: false,
      lamports: rent(82),
      programAddress: TOKEN_PROGRAM_ADDRESS,
    } as never);
  }
  const ata = async (owner: Address, m: Address = mint) =>
    (await findAssociatedTokenPda({ mint: m, owner, tokenProgram: TOKEN_PROGRAM_ADDRESS }))[0];
  const setTokenBalance = async (owner: Address, amount: bigint, m: Address = mint) => {
    const data = getTokenEncoder().encode({
      mint: m,
      owner,
      amount,
      delegate: none(),
      state: AccountState.Initialized,
      isNative: none(),
      delegatedAmount: 0n,
      closeAuthority: none(),
    });
    svm.setAccount({
      address: await ata(owner, m),
      data: new Uint8Array(data),
      executable: false,
      lamports: rent(165),
      programAddress: TOKEN_PROGRAM_ADDRESS,
    } as never);
  };
  await setTokenBalance(payer.address, 10_000_000n);
  await setTokenBalance(payer.address, 10_000_000n, otherMint);
  await setTokenBalance(treasury.address, 0n);
  svm.airdrop(feePayer.address as never, 1_000_000_000n as never);

  const tokenBalance = (account: Address) => {
    const a = svm.getAccount(account as never);
    return a.exists ? getTokenDecoder().decode(a.data).amount : null;
  };

  const slot = () => Number(svm.getClock().slot);
  const methods: Record<string, (params: unknown[]) => unknown> = {
    getAccountInfo([address]) {
      const a = svm.getAccount(address as never);
      const value = a.exists
        ? {
            data: [Buffer.from(a.data).toString("base64"), "base64"],
            executable: a.executable,
            lamports: Number(a.lamports),
            owner: a.programAddress,
            rentEpoch: 0,
            space: a.data.length,
          }
        : null;
      return { context: { slot: slot() }, value };
    },
    getLatestBlockhash() {
      // Each blockhash the VM moves to is a later "epoch": valid until 50 blocks past the height it was handed out at.
      return { context: { slot: slot() }, value: { blockhash: svm.latestBlockhash(), lastValidBlockHeight: 150 + 200 * epoch() } };
    },
    getBlockHeight() {
      return 100 + 200 * epoch();
    },
    simulateTransaction([wire]) {
      const { err, logs, unitsConsumed } = outcomeOf(svm.simulateTransaction(decodeWire(wire)));
      return {
        context: { slot: slot() },
        value: { err, logs, accounts: null, unitsConsumed, returnData: null, innerInstructions: null, replacementBlockhash: null },
      };
    },
    sendTransaction([wire]) {
      const tx = decodeWire(wire);
      // The node's preflight: a transaction that fails in simulation is refused and never submitted.
      const preflight = outcomeOf(svm.simulateTransaction(tx));
      if (preflight.err !== null)
        throw new RpcFault(-32002, `Transaction simulation failed: ${JSON.stringify(preflight.err)}`, {
          ...preflight,
          accounts: null,
          returnData: null,
        });
      svm.sendTransaction(tx);
      return getSignatureFromTransaction(tx);
    },
    getSignatureStatuses([signatures]) {
      const value = (signatures as string[]).map((signature) => {
        const t = svm.getTransaction(signature as Signature);
        if (!t) return null;
        const { err } = outcomeOf(t);
        // A transaction on the VM is final as soon as it ran.
        return {
          slot: slot(),
          confirmations: null,
          err,
          status: err === null ? { Ok: null } : { Err: err },
          confirmationStatus: "finalized",
        };
      });
      return { context: { slot: slot() }, value };
    },
    isBlockhashValid([blockhash]) {
      return { context: { slot: slot() }, value: blockhash === svm.latestBlockhash() };
    },
  };
  // The blockhashes the VM has had, in order: the block height grows with each (an expired blockhash is many blocks old).
  const hashes: string[] = [];
  function epoch(): number {
    const h = svm.latestBlockhash();
    if (hashes.at(-1) !== h) hashes.push(h);
    return hashes.length - 1;
  }
  const server: Server = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      const msg = JSON.parse(body) as { id: unknown; method: string; params?: unknown[] };
      const fn = methods[msg.method];
      let reply: object;
      try {
        if (!fn) throw new RpcFault(-32601, `method ${msg.method} is not in the stand-in`);
        reply = { jsonrpc: "2.0", id: msg.id, result: fn(msg.params ?? []) };
      } catch (error) {
        const e = error instanceof RpcFault ? error : new RpcFault(-32602, `invalid params: ${(error as Error).message}`);
        reply = {
          jsonrpc: "2.0",
          id: msg.id,
          error: { code: e.code, message: e.message, ...(e.data === undefined ? {} : { data: e.data }) },
        };
      }
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify(reply));
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const rpcUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    svm,
    rpcUrl,
    mint,
    otherMint,
    payer,
    treasury,
    feePayerSecret,
    feePayer,
    stranger,
    ata,
    tokenBalance,
    setTokenBalance,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
