// The Segment message shapes the demo generator produces and sends to `POST /v1/batch`.

export const SEGMENT_MESSAGE_TYPES = [
  'identify',
  'track',
  'page',
  'group',
  'session_start',
  'session_end',
  'click',
  'link',
] as const;
export type SegmentMessageType = (typeof SEGMENT_MESSAGE_TYPES)[number];

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

// NOTE: a type alias, not an interface, so it is assignable to JsonObject (page properties).
export type SegmentPage = {
  url: string;
  path: string;
  referrer: string;
  title: string;
  search: string;
};

export interface SegmentContext {
  ip: string;
  userAgent: string;
  page: SegmentPage;
  sessionId?: string;
  /** explicit account on identify calls */
  groupId?: string;
  locale: string;
  timezone: string;
  screen: { width: number; height: number };
  library: { name: string; version: string };
}

export interface SegmentMessage {
  type: SegmentMessageType;
  messageId: string;
  anonymousId: string;
  userId?: string;
  timestamp: string;
  context: SegmentContext;
  properties?: JsonObject;
  traits?: JsonObject;
  groupId?: string;
  event?: string;
  name?: string;
}

export interface TrafficBatch {
  tenant: string;
  messages: SegmentMessage[];
}
