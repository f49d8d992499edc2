// Panel textures: each panel is painted with the 2D canvas API into its own canvas, at the scene's pixel size and
// with the layout the hub resolved (the OpenXR bridge's rects), and only when one of its entities changed.

export const COLORS = {
  background: '#1d2126', title: '#e8eaed', text: '#e8eaed', muted: '#9aa0a6',
  on: '#1fb24a', off: '#4f555c', button: '#2f6fd6', track: '#3a4047', fill: '#f0a020', offline: '#b3261e',
};

function label(control) {
  return control.label || control.entity_id;
}

function fit(ctx, text, maxWidth) {
  if (ctx.measureText(text).width <= maxWidth) return text;
  let t = text;
  while (t.length > 1 && ctx.measureText(t + '…').width > maxWidth) t = t.slice(0, -1);
  return t + '…';
}

function rect(ctx, [x0, y0, x1, y1], color) {
  ctx.fillStyle = color;
  ctx.fillRect(x0, y0, x1 - x0, y1 - y0);
}

/** The displayed value of a control's entity: for a slider its attribute's fraction, else the state. */
export function controlView(control, state) {
  if (!state) return { text: '—', on: false, fraction: 0 };
  if (control.type === 'slider') {
    const raw = control.attribute ? state.a[control.attribute] : state.v;
    const value = typeof raw === 'number' ? raw : (state.v === 'off' ? control.min : null);
    const fraction = value === null ? 0 : Math.min(1, Math.max(0, (value - control.min) / ((control.max - control.min) || 1)));
    return { text: value === null ? '—' : String(Math.round(value)), on: state.v === 'on', fraction };
  }
  const unit = state.a.unit_of_measurement ? ` ${state.a.unit_of_measurement}` : '';
  return { text: `${state.v}${unit}`, on: state.v === 'on', fraction: 0 };
}

/**
 * Paint one panel. `panel` has the resolved scene's shape; `states` maps entity ids to stream states;
 * `offline` draws the banner the OpenXR bridge shows while the hub is unreachable.
 */
export function paintPanel(canvas, panel, states, { offline = false, highlight = null, note = '' } = {}) {
  const [w, h] = panel.pixel_size;
  if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
  const ctx = canvas.getContext('2d');
  rect(ctx, [0, 0, w, h], COLORS.background);
  const [tx0, ty0, tx1, ty1] = panel.title_rect;
  const titleSize = Math.max(12, Math.floor((ty1 - ty0) * 0.6));
  ctx.font = `bold ${titleSize}px sans-serif`;
  ctx.textBaseline = 'middle';
  ctx.fillStyle = offline ? COLORS.offline : COLORS.title;
  const title = offline ? `${panel.title || panel.id} · offline` : (note || panel.title || panel.id);
  ctx.fillText(fit(ctx, title, tx1 - tx0 - 16), tx0 + 8, (ty0 + ty1) / 2);
  panel.controls.forEach((control, i) => {
    const r = control.rect;
    const [x0, y0, x1, y1] = r;
    const view = controlView(control, states.get(control.entity_id));
    const size = Math.max(10, Math.floor(Math.min((y1 - y0) * 0.32, 40)));
    ctx.font = `${size}px sans-serif`;
    if (control.type === 'toggle') {
      rect(ctx, r, view.on ? COLORS.on : COLORS.off);
    } else if (control.type === 'button') {
      rect(ctx, r, COLORS.button);
    } else if (control.type === 'slider') {
      rect(ctx, r, COLORS.track);
      rect(ctx, [x0, y0, x0 + (x1 - x0) * view.fraction, y1], COLORS.fill);
    } else {
      rect(ctx, r, COLORS.background);
      ctx.strokeStyle = COLORS.track;
      ctx.strokeRect(x0 + 0.5, y0 + 0.5, x1 - x0 - 1, y1 - y0 - 1);
    }
    if (highlight === i) {
      ctx.strokeStyle = '#ffffff';
      ctx.lineWidth = 3;
      ctx.strokeRect(x0 + 1.5, y0 + 1.5, x1 - x0 - 3, y1 - y0 - 3);
      ctx.lineWidth = 1;
    }
    ctx.fillStyle = COLORS.text;
    const text = control.type === 'button' ? label(control)
      : control.type === 'toggle' ? `${label(control)}: ${view.on ? 'ON' : 'OFF'}`
        : `${label(control)}: ${view.text}`;
    ctx.fillText(fit(ctx, text, x1 - x0 - 12), x0 + 6, (y0 + y1) / 2);
  });
  return canvas;
}
