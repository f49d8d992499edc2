// Types of qilu-xr (index.js). The shapes follow GET /api/xr/scenes/{id} and docs/stream.md.

export interface Pose { x: number; y: number; z: number; qx: number; qy: number; qz: number; qw: number; frame?: string }
export interface EntityState { v: unknown; a: Record<string, unknown>; lc?: number; lu?: number }
export type Binding = { call: { command: string; args: Record<string, unknown> } } | { bridge: 'move_panel' | 'toggle_menu' | 'none' };
export type Action = 'select' | 'grab' | 'menu';

export interface Control {
  index: number;
  type: 'toggle' | 'button' | 'slider' | 'readout';
  entity_id: string;
  label: string | null;
  attribute: string | null;
  min: number;
  max: number;
  /** x0, y0, x1, y1 in panel pixels (exclusive end) */
  rect: [number, number, number, number];
  bindings: Partial<Record<Action, Binding>>;
  controllable: boolean;
}

export interface Placement {
  relative_to: 'device' | 'area' | 'anchor' | 'stage';
  ref: string | null;
  offset: [number, number, number];
  yaw_deg: number;
  /** the reference frame's pose in the home frame; null for anchors and for devices/areas with no pose yet */
  reference: Pose | null;
  /** the panel relative to its reference */
  local: Pose;
  /** reference ∘ local, or null when the reference is unknown */
  pose: Pose | null;
}

export interface Panel {
  id: string;
  title: string;
  width_m: number;
  height_m: number;
  pixel_size: [number, number];
  layout: 'grid' | 'list';
  columns: number;
  title_rect: [number, number, number, number];
  controls: Control[];
  bindings: Partial<Record<Action, Binding>>;
  placement: Placement;
}

export interface Scene {
  id: string;
  description: string;
  source: string;
  version: string;
  panels: Panel[];
  bindings: Partial<Record<Action, Binding>>;
  entities: string[];
  states?: Record<string, EntityState>;
}

export interface Hit { distance: number; u: number; v: number }
export type Intent =
  | { kind: 'call'; entity_id: string; command: string; args: Record<string, unknown>; panel: string; control: number }
  | { kind: 'bridge'; action: 'move_panel' | 'toggle_menu'; panel: string | null };

export interface ClientOptions {
  /** ws(s)://host:port/api/stream */
  url: string;
  /** an access token; or use `credential` to fetch one per connection (e.g. a single-use ticket) */
  token?: string;
  credential?: () => Promise<string>;
  /** a WebSocket constructor (Node 20: globalThis.WebSocket with --experimental-websocket, or the ws package) */
  WebSocket?: unknown;
  sceneId?: string | null;
  entities?: string[] | null;
  poses?: boolean;
}

export type Status = 'idle' | 'connecting' | 'online' | 'offline' | 'unauthorized' | 'closed';

export class HubClient {
  constructor(options: ClientOptions);
  readonly states: Map<string, EntityState>;
  readonly scene: Scene | null;
  readonly poses: { devices: Record<string, Pose | null>; areas: Record<string, Pose | null> };
  readonly status: Status;
  /** how many times the client authenticated (1 after the first connection, more after reconnects) */
  readonly connects: number;
  onState: (entityId: string, state: EntityState | null) => void;
  onScene: (scene: Scene | null) => void;
  onPoses: (message: { devices: Record<string, Pose | null>; areas: Record<string, Pose | null> }) => void;
  onStatus: (status: Status, detail?: string) => void;
  start(): Promise<void>;
  close(): void;
  call(entityId: string, command: string, args?: Record<string, unknown>): Promise<unknown>;
  setPose(kind: 'devices' | 'areas', key: string, pose: Partial<Pose>): Promise<{ kind: string; id: string; pose: Pose | null }>;
  scenes(): Promise<Array<{ id: string; description: string; panels: number; version: string }>>;
}

export const IDENTITY: Readonly<Pose>;
export function rotate(q: Pose, v: number[]): number[];
export function compose(parent: Pose, child: Pose): Pose;
export function inverse(p: Pose): Pose;
export function yaw(deg: number, x?: number, y?: number, z?: number): Pose;
export function yawOf(p: Pose): number;
export function matrix(p: Pose, sx?: number, sy?: number): Float32Array;
export function fromTransform(t: { position: { x: number; y: number; z: number }; orientation: { x: number; y: number; z: number; w: number } }): Pose;
export function rayPanel(origin: number[], dir: number[], pose: Pose, width: number, height: number): Hit | null;
export function aimRay(p: Pose): { origin: number[]; dir: number[] };
export function controlAt(panel: Panel, u: number, v: number): number | null;
export function fractionIn(panel: Panel, control: Control, u: number): number;
export function sliderValue(control: Control, fraction: number): number;
export function intentFor(action: Action, scene: Scene, panel: Panel | null, hit: Hit | null): Intent | null;
export function panelPose(panel: Panel, anchorPose?: Pose | null): Pose;
export function referenceFor(panel: Panel, homePose: Pose): Pose;
export function fetchScene(base: string, sceneId: string, options?: { token?: string; fetch?: typeof fetch }): Promise<Scene>;
export function streamUrl(base: string): string;
