// WebGL2 drawing for the XR page: textured panel quads and aim rays, per XR view. No library: a panel is two
// triangles, a ray one line, and a few hundred lines of three.js would cost more to send than this does.

const VS = `#version 300 es
in vec3 p;
uniform mat4 u_pv;
uniform mat4 u_m;
out vec2 uv;
void main() { uv = vec2(p.x + 0.5, 0.5 - p.y); gl_Position = u_pv * u_m * vec4(p, 1.0); }`;

const FS = `#version 300 es
precision mediump float;
in vec2 uv;
uniform sampler2D u_t;
uniform vec4 u_c;
uniform bool u_tex;
out vec4 o;
void main() { o = u_tex ? texture(u_t, uv) : u_c; }`;

/** a * b, column-major 4x4 */
export function mul4(a, b) {
  const o = new Float32Array(16);
  for (let c = 0; c < 4; c++) {
    for (let r = 0; r < 4; r++) {
      let s = 0;
      for (let k = 0; k < 4; k++) s += a[k * 4 + r] * b[c * 4 + k];
      o[c * 4 + r] = s;
    }
  }
  return o;
}

export const IDENTITY4 = new Float32Array([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]);

function shader(gl, type, src) {
  const s = gl.createShader(type);
  gl.shaderSource(s, src);
  gl.compileShader(s);
  if (!gl.getShaderParameter(s, gl.COMPILE_STATUS)) throw new Error(gl.getShaderInfoLog(s));
  return s;
}

export class Renderer {
  constructor(gl) {
    this.gl = gl;
    const prog = gl.createProgram();
    gl.attachShader(prog, shader(gl, gl.VERTEX_SHADER, VS));
    gl.attachShader(prog, shader(gl, gl.FRAGMENT_SHADER, FS));
    gl.linkProgram(prog);
    if (!gl.getProgramParameter(prog, gl.LINK_STATUS)) throw new Error(gl.getProgramInfoLog(prog));
    this.prog = prog;
    this.loc = {
      p: gl.getAttribLocation(prog, 'p'), pv: gl.getUniformLocation(prog, 'u_pv'), m: gl.getUniformLocation(prog, 'u_m'),
      t: gl.getUniformLocation(prog, 'u_t'), c: gl.getUniformLocation(prog, 'u_c'), tex: gl.getUniformLocation(prog, 'u_tex'),
    };
    this.quad = gl.createBuffer();
    gl.bindBuffer(gl.ARRAY_BUFFER, this.quad);
    gl.bufferData(gl.ARRAY_BUFFER, new Float32Array([-0.5, -0.5, 0, 0.5, -0.5, 0, -0.5, 0.5, 0, 0.5, 0.5, 0]), gl.STATIC_DRAW);
    this.line = gl.createBuffer();
    this.vao = gl.createVertexArray();
  }

  /** Upload a painted canvas into the panel's texture (created on first use). */
  upload(entry, canvas) {
    const gl = this.gl;
    if (!entry.texture) {
      entry.texture = gl.createTexture();
      gl.bindTexture(gl.TEXTURE_2D, entry.texture);
      gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MIN_FILTER, gl.LINEAR);
      gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MAG_FILTER, gl.LINEAR);
      gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_S, gl.CLAMP_TO_EDGE);
      gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_T, gl.CLAMP_TO_EDGE);
    } else {
      gl.bindTexture(gl.TEXTURE_2D, entry.texture);
    }
    gl.texImage2D(gl.TEXTURE_2D, 0, gl.RGBA, gl.RGBA, gl.UNSIGNED_BYTE, canvas);
  }

  forget(entry) {
    if (entry.texture) this.gl.deleteTexture(entry.texture);
    entry.texture = null;
  }

  begin(framebuffer, width, height, clear) {
    const gl = this.gl;
    gl.bindFramebuffer(gl.FRAMEBUFFER, framebuffer);
    gl.viewport(0, 0, width, height);
    gl.clearColor(clear[0], clear[1], clear[2], clear[3]);
    gl.enable(gl.DEPTH_TEST);
    gl.disable(gl.CULL_FACE);
    gl.clear(gl.COLOR_BUFFER_BIT | gl.DEPTH_BUFFER_BIT);
    gl.useProgram(this.prog);
    gl.bindVertexArray(this.vao);
  }

  /** Draw into one view: panels [{texture, model}] and rays [[x0,y0,z0,x1,y1,z1]]. */
  view(viewport, pv, panels, rays) {
    const gl = this.gl, loc = this.loc;
    gl.viewport(viewport.x, viewport.y, viewport.width, viewport.height);
    gl.uniformMatrix4fv(loc.pv, false, pv);
    gl.bindBuffer(gl.ARRAY_BUFFER, this.quad);
    gl.enableVertexAttribArray(loc.p);
    gl.vertexAttribPointer(loc.p, 3, gl.FLOAT, false, 0, 0);
    gl.uniform1i(loc.tex, 1);
    gl.activeTexture(gl.TEXTURE0);
    gl.uniform1i(loc.t, 0);
    for (const p of panels) {
      if (!p.texture) continue;
      gl.bindTexture(gl.TEXTURE_2D, p.texture);
      gl.uniformMatrix4fv(loc.m, false, p.model);
      gl.drawArrays(gl.TRIANGLE_STRIP, 0, 4);
    }
    if (!rays.length) return;
    gl.uniform1i(loc.tex, 0);
    gl.uniform4f(loc.c, 0.55, 0.85, 1.0, 1.0);
    gl.uniformMatrix4fv(loc.m, false, IDENTITY4);
    gl.bindBuffer(gl.ARRAY_BUFFER, this.line);
    gl.bufferData(gl.ARRAY_BUFFER, new Float32Array(rays.flat()), gl.STREAM_DRAW);
    gl.vertexAttribPointer(loc.p, 3, gl.FLOAT, false, 0, 0);
    gl.drawArrays(gl.LINES, 0, rays.length * 2);
  }
}
