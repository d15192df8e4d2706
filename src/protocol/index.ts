/**
 * The wire protocol as a pure codec: frames, compression, message schemas and
 * version negotiation. No sockets and no I/O; the transport drives it.
 * PROTOCOL.md specifies the same thing byte by byte.
 */
export { DEFAULT_MAX_FRAME_BYTES, PROTOCOL_NAME, PROTOCOL_VERSIONS } from './constants.js';
export {
  type ChunkOptions,
  type CodecOptions,
  type Decoded,
  type FrameCache,
  MessageCodec,
  negotiateVersion,
} from './codec.js';
export {
  chooseCodec,
  COMPRESSION_CODECS,
  type CompressionCodec,
  compress,
  decompress,
  isCompressionCodec,
  supportedCodecs,
} from './compression.js';
export { ProtocolError } from './errors.js';
export {
  encodeFrame,
  type Frame,
  FRAME_HEADER_BYTES,
  FrameDecoder,
  type FrameDecoderOptions,
  FrameKind,
  type FrameKindValue,
  writeFrameHeader,
} from './frame.js';
export {
  type ErrorMessage,
  type HelloMessage,
  MESSAGE_TYPES,
  type Message,
  type MessageType,
  messageSchema,
  parseMessage,
  type PingMessage,
  type PongMessage,
  type RequestMessage,
  type ResponseMessage,
  type WelcomeMessage,
  type SyncAckMessage,
  type SyncChangesMessage,
  type SyncErrorMessage,
  type SyncMessage,
  type SyncOpenMessage,
  type SyncStartMessage,
} from './messages.js';
