/**
 * `@srp/hub`: an embeddable SRP hub. This version carries the provider WebSocket
 * endpoint with the complete v1 handshake, offers, heartbeat supervision, session
 * replacement and the discovery document; the consumer API arrives with the relay.
 *
 * @packageDocumentation
 * @module @srp/hub
 */
export { createHub, PROVIDER_PATH, type Hub, type HubOptions, type HubEvents, type SessionInfo } from "./hub.js";
export { MemoryAccountStore, hashApiKey, generateApiKey, type Account, type AccountStore } from "./accounts.js";
export { toNodeHandler, toWebRequest, writeWebResponse, type FetchHandler } from "./node-adapter.js";
