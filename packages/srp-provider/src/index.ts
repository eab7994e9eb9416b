/**
 * `@srp/provider`: the provider node. This version dials out to a hub, verifies the
 * hub's signed hello, authenticates with the node's Ed25519 key and an account binding,
 * heartbeats, and reconnects with backoff; serving jobs from local backends arrives with
 * the relay.
 *
 * @packageDocumentation
 * @module @srp/provider
 */
export {
  connectToHub,
  discoverHub,
  HubConnection,
  type ConnectOptions,
  type ConnectionState,
  type HubConnectionEvents,
  type ReconnectPolicy,
} from "./connection.js";
