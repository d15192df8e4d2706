/**
 * Discovery: how a child finds its hub on the LAN (multicast announce/query over IPv4
 * and IPv6, DNS-SD, static addresses, the last good address). Every result is a hint;
 * trust comes from the certificate the transport pins. docs/DISCOVERY.md has the details.
 */
export { type CollectHubsOptions, collectHubs, type DiscoveryAttempt } from './attempt.js';
export { type BrowserOptions, DEFAULT_EXPIRY_MS } from './browser.js';
export {
  DnsSdBrowser,
  type DnsSdBrowserOptions,
  type DnsSdOptions,
  DnsSdPublisher,
  type DnsSdPublisherOptions,
} from './dns-sd.js';
export {
  DiscoveryBindError,
  DiscoveryOptionError,
  InvalidStaticAddressError,
  LastAddressSaveError,
} from './errors.js';
export { type InterfaceSelectionOptions, selectInterfaces } from './interfaces.js';
export { DNS_SD_SERVICE } from './mdns.js';
export {
  DEFAULT_ANNOUNCE_INTERVAL_MS,
  type FindHubOptions,
  findHub,
  HubAnnouncer,
  type HubAnnouncerOptions,
  HubBrowser,
  type HubBrowserOptions,
  type MulticastDiscoveryOptions,
} from './multicast.js';
export { type DescribeOptions, describeAttempt } from './report.js';
export type { HubIdentityOptions } from './options.js';
export { DiscoverySet } from './set.js';
export {
  firstReachable,
  formatHostPort,
  type HubCandidate,
  hubCandidates,
  LastAddressMemory,
  type LastAddressMemoryOptions,
  parseStaticAddress,
  parseStaticAddresses,
  type RememberedAddress,
  type StaticAddress,
  tcpReachable,
} from './static.js';
export type * from './types.js';
export {
  decodeDiscoveryMessage,
  type DiscoveryMessage,
  encodeDiscoveryMessage,
  MAX_DATAGRAM_BYTES,
} from './wire.js';
