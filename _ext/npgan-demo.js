/* npgan-demo.js: the book's own generators, run in the page, no framework.
 *
 * The build (_ext/npgan_demo.py) exports each generator from the book's checkpoint
 * into _static/npgan/<model>.js, which sets window.npganDemoData[<model>]; the
 * format is described in src/npgan/export.py. This file decodes those weights,
 * runs G's forward pass layer by layer, and turns every <div data-npgan-demo="…">
 * on the page into a widget. Contract for the tests (kept stable):
 *
 *   window.npganDemo.ready             a Promise, settled once every widget drew (or failed)
 *   window.npganDemo.models            the model names this page has
 *   window.npganDemo.inputSize(name)   length of G's input vector
 *   window.npganDemo.source(name)      the checkpoint, relative to $NPGAN_DATA
 *   window.npganDemo.generate(name, v) 784 values 0…255, like npgan's to_uint8(G(v))
 *
 * and each widget's root gets data-state="ready" after its first images (or
 * "error: …"), plus data-ready-ms (when, since the page was opened), data-work-ms
 * (how long decoding the weights and drawing the first images took) and
 * root.npganWidget = {canvas, cols, inputs(), model()} for the tests.
 *
 * A widget may switch between generators of one input layout, such as InfoGAN without
 * labels and with 100 (21.7): <div data-npgan-demo="infogan" data-npgan-switch="infogan_labels100">
 * gets one button per model (data-model="<name>"); switching keeps z and the codes.
 */
(function () {
  "use strict";
  const DATA = window.npganDemoData || {};
  const SIDE = 28, PAD = 2;

  // ------------------------------------------------------------ decoding
  // base 85 (RFC 1924's alphabet, as Python's base64.b85encode): 5 characters → 4 bytes,
  // big-endian; a last group of n + 1 characters holds n bytes
  const B85 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz!#$%&()*+-;<=>?@^_`{|}~";
  const DIGIT = new Uint8Array(128);
  for (let i = 0; i < B85.length; i++) DIGIT[B85.charCodeAt(i)] = i;
  function bytesOf(text) {
    const n = Math.floor(text.length / 5) * 4 + Math.max(0, (text.length % 5) - 1);
    const out = new Uint8Array(n);
    for (let at = 0, o = 0; at < text.length; at += 5, o += 4) {
      let value = 0;
      for (let i = 0; i < 5; i++) value = value * 85 + (at + i < text.length ? DIGIT[text.charCodeAt(at + i)] : 84);
      for (let i = 0; i < 4 && o + i < n; i++) out[o + i] = (value >>> (24 - 8 * i)) & 255;
    }
    return out;
  }
  function float32s(text) {
    const bytes = bytesOf(text), view = new DataView(bytes.buffer);
    const out = new Float32Array(bytes.length / 4);
    for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(4 * i, true);
    return out;
  }
  // b-bit integers q + top in a little-endian bit stream, times one scale per
  // index of `axis` (export.py: w ≈ scale · q)
  function tensor(t) {
    const bytes = bytesOf(t.q), scale = float32s(t.scale), bits = t.bits;
    const top = (1 << (bits - 1)) - 1, mask = (1 << bits) - 1;
    const count = t.shape.reduce((a, b) => a * b, 1);
    const inner = t.shape.slice(t.axis + 1).reduce((a, b) => a * b, 1), n = t.shape[t.axis];
    const out = new Float32Array(count);
    for (let k = 0, bit = 0; k < count; k++, bit += bits) {
      const at = bit >> 3;
      const word = bytes[at] | (bytes[at + 1] << 8) | (bytes[at + 2] << 16);
      out[k] = (((word >>> (bit & 7)) & mask) - top) * scale[Math.floor(k / inner) % n];
    }
    return out;
  }

  // ------------------------------------------------------------ layers
  // type → (spec, input shape) → {shape: output shape, forward(x) → y}; x, y Float64Array
  const LAYERS = {
    linear(spec) {   // y = x W + b, W (nIn, nOut) row by row; zero inputs (one-hot) skipped
      const W = tensor(spec.W), b = float32s(spec.b), nIn = spec.nIn, nOut = spec.nOut;
      return { shape: [nOut], forward(x) {
        const y = Float64Array.from(b);
        for (let i = 0; i < nIn; i++) {
          const xi = x[i];
          if (xi === 0) continue;
          for (let j = 0, row = i * nOut; j < nOut; j++) y[j] += xi * W[row + j];
        }
        return y;
      } };
    },
    leaky_relu(spec, shape) {
      const slope = spec.slope;
      return { shape, forward(x) {
        for (let i = 0; i < x.length; i++) if (x[i] < 0) x[i] *= slope;
        return x;
      } };
    },
    tanh(spec, shape) {
      return { shape, forward(x) { for (let i = 0; i < x.length; i++) x[i] = Math.tanh(x[i]); return x; } };
    },
    sigmoid(spec, shape) {
      return { shape, forward(x) { for (let i = 0; i < x.length; i++) x[i] = 1 / (1 + Math.exp(-x[i])); return x; } };
    },
    reshape(spec, shape) {   // (C, H, W) in C order is already the flat layout: nothing moves
      const total = shape.reduce((a, b) => a * b, 1);
      const known = spec.shape.filter(d => d !== -1).reduce((a, b) => a * b, 1);
      return { shape: spec.shape.map(d => (d === -1 ? total / known : d)), forward: x => x };
    },
    affine(spec, shape) {   // batch norm with its running statistics: y = x·scale_c + shift_c
      const scale = float32s(spec.scale), shift = float32s(spec.shift);
      return { shape, forward(x) {
        const per = x.length / scale.length;
        for (let i = 0; i < x.length; i++) {
          const c = Math.floor(i / per);
          x[i] = x[i] * scale[c] + shift[c];
        }
        return x;
      } };
    },
    conv_transpose2d(spec, shape) {   // each input pixel stamps its k×k kernel at stride s
      const W = tensor(spec.W), b = float32s(spec.b), k = spec.k, s = spec.stride, p = spec.padding;
      const [cIn, H, Wd] = shape, cOut = spec.cOut;
      const Ho = (H - 1) * s - 2 * p + k, Wo = (Wd - 1) * s - 2 * p + k, plane = Ho * Wo;
      // the kernel as [c_in][i][j][c_out] and the sum as [pixel][c_out]: contiguous inner loops
      const K = new Float32Array(W.length);
      for (let ci = 0; ci < cIn; ci++) for (let co = 0; co < cOut; co++) for (let t = 0; t < k * k; t++) {
        K[(ci * k * k + t) * cOut + co] = W[(ci * cOut + co) * k * k + t];
      }
      const acc = new Float64Array(plane * cOut);
      return { shape: [cOut, Ho, Wo], forward(x) {
        acc.fill(0);
        for (let ci = 0; ci < cIn; ci++) for (let h = 0; h < H; h++) for (let w = 0; w < Wd; w++) {
          const v = x[(ci * H + h) * Wd + w];
          if (v === 0) continue;
          for (let i = 0; i < k; i++) {
            const oh = h * s + i - p;
            if (oh < 0 || oh >= Ho) continue;
            for (let j = 0; j < k; j++) {
              const ow = w * s + j - p;
              if (ow < 0 || ow >= Wo) continue;
              const out = (oh * Wo + ow) * cOut, kernel = (ci * k * k + i * k + j) * cOut;
              for (let co = 0; co < cOut; co++) acc[out + co] += v * K[kernel + co];
            }
          }
        }
        const y = new Float64Array(cOut * plane);   // back to (C, H, W), plus the bias
        for (let q = 0; q < plane; q++) for (let co = 0; co < cOut; co++) y[co * plane + q] = acc[q * cOut + co] + b[co];
        return y;
      } };
    },
  };

  const decoded = {};
  function model(name) {
    if (decoded[name]) return decoded[name];
    const data = DATA[name];
    if (!data) throw new Error(`没有模型 ${name} 的数据（本页加载了：${Object.keys(DATA).join("、") || "无"}）`);
    let shape = [data.inputSize];
    const layers = data.layers.map(spec => {
      const make = LAYERS[spec.type];
      if (!make) throw new Error(`npgan-demo.js 不认识层的类型 ${spec.type}`);
      const layer = make(spec, shape);
      shape = layer.shape;
      return layer;
    });
    return (decoded[name] = { data, layers });
  }

  function generate(name, input) {
    const m = model(name);
    if (input.length !== m.data.inputSize) {
      throw new Error(`${name} 的输入应有 ${m.data.inputSize} 个数，收到 ${input.length} 个`);
    }
    let x = Float64Array.from(input);
    for (const layer of m.layers) x = layer.forward(x);
    const pixels = new Uint8Array(x.length);   // to_uint8: round((x + 1)·127.5), clipped
    for (let i = 0; i < x.length; i++) pixels[i] = Math.min(255, Math.max(0, Math.round((x[i] + 1) * 127.5)));
    return pixels;
  }

  // ------------------------------------------------------------ inputs
  function prng(seed) {   // mulberry32: a small seeded generator, uniform in [0, 1)
    let a = seed >>> 0;
    return () => {
      a = (a + 0x6D2B79F5) >>> 0;
      let t = Math.imul(a ^ (a >>> 15), 1 | a);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }
  function noise(part, random) {   // z ~ N(0, I) by Box–Muller, or U(−1, 1); times its scale
    const z = new Float64Array(part.size), scale = part.scale ?? 1;
    for (let i = 0; i < z.length; i++) {
      z[i] = scale * (part.noise === "uniform" ? 2 * random() - 1
        : Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random()));
    }
    return z;
  }
  // G's input from its parts: z, then the one-hot label / c1, then the continuous codes
  function assemble(layout, values) {
    const out = [];
    for (const part of layout) {
      const v = values[part.part];
      if (part.part === "z" || part.part === "cont") out.push(...v);
      else for (let i = 0; i < part.size; i++) out.push(i === v ? 1 : 0);
    }
    return Float64Array.from(out);
  }
  function slerp(z0, z1, t) {   // as the notebooks: along the great circle from z0 to z1
    let dot = 0, n0 = 0, n1 = 0;
    for (let i = 0; i < z0.length; i++) { dot += z0[i] * z1[i]; n0 += z0[i] ** 2; n1 += z1[i] ** 2; }
    const omega = Math.acos(Math.min(1, Math.max(-1, dot / Math.sqrt(n0 * n1))));
    if (omega < 1e-6) return Float64Array.from(z0);
    const a = Math.sin((1 - t) * omega) / Math.sin(omega), b = Math.sin(t * omega) / Math.sin(omega);
    return z0.map((v, i) => a * v + b * z1[i]);
  }

  // ------------------------------------------------------------ drawing
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value);
    }
    node.append(...children);
    return node;
  }
  // images side by side, cols per row, PAD white pixels between (as npgan.image_grid)
  function draw(canvas, images, cols) {
    const rows = Math.ceil(images.length / cols), step = SIDE + PAD;
    canvas.width = cols * step + PAD;
    canvas.height = rows * step + PAD;
    const ctx = canvas.getContext("2d"), picture = ctx.createImageData(canvas.width, canvas.height);
    picture.data.fill(255);
    images.forEach((pixels, n) => {
      const top = PAD + Math.floor(n / cols) * step, left = PAD + (n % cols) * step;
      for (let r = 0; r < SIDE; r++) for (let c = 0; c < SIDE; c++) {
        const at = 4 * ((top + r) * canvas.width + left + c), v = pixels[r * SIDE + c];
        picture.data[at] = picture.data[at + 1] = picture.data[at + 2] = v;
      }
    });
    ctx.putImageData(picture, 0, 0);
  }
  function slider(label, min, max, step, value, onInput) {
    const output = el("output", {}, Number(value).toFixed(2));
    const input = el("input", { type: "range", min, max, step, value, "aria-label": label,
      oninput: () => { output.textContent = Number(input.value).toFixed(2); onInput(Number(input.value)); } });
    return { input, row: el("label", { class: "npgan-demo-slider" }, `${label} = `, output, input) };
  }
  // value buttons (digits, c1, generators): one is pressed; ← → move between them
  function choices(label, n, value, onPick, texts) {
    const group = el("div", { class: "npgan-demo-choices", role: "group", "aria-label": label });
    const buttons = [];
    const pick = (v, focus) => {
      buttons.forEach((b, i) => b.setAttribute("aria-pressed", String(i === v)));
      if (focus) buttons[v].focus();
      onPick(v);
    };
    for (let i = 0; i < n; i++) {
      buttons.push(el("button", { type: "button", "data-value": i, "aria-pressed": String(i === value),
        onclick: () => pick(i, false) }, texts ? texts[i] : String(i)));
    }
    group.addEventListener("keydown", e => {
      const at = buttons.indexOf(document.activeElement), move = { ArrowRight: 1, ArrowLeft: -1 }[e.key];
      if (at >= 0 && move) { e.preventDefault(); pick((at + move + n) % n, true); }
    });
    group.append(el("span", {}, label + "："), ...buttons);
    return { group, pick, buttons };
  }
  // a generator's name on its button: how many labelled images it learned from (InfoGAN)
  function modelLabel(data) {
    if (data.nLabels === undefined) return data.name;
    return data.nLabels ? `用了 ${data.nLabels} 个标签` : "不用标签";
  }

  // ------------------------------------------------------------ widgets
  const COLS = 8;
  function widget(root) {
    const begun = performance.now();
    const names = [root.dataset.npganDemo, ...(root.dataset.npganSwitch || "").split(/\s+/).filter(Boolean)];
    let name = names[0], m = model(name);
    const layout = m.data.input;
    for (const other of names.slice(1)) {
      if (JSON.stringify(model(other).data.input) !== JSON.stringify(layout)) {
        throw new Error(`${other} 的输入与 ${name} 的不同，不能在同一个小部件里切换`);
      }
    }
    const parts = new Set(layout.map(p => p.part)), zPart = layout[0];
    let seed = Number(root.dataset.seed || 1), inputs = [];
    const canvas = el("canvas", { class: "npgan-demo-grid", role: "img" });
    const show = (target, list, cols) => {
      draw(target, list.map(v => generate(name, v)), cols);
      return list;
    };
    const zs = n => { const random = prng(seed); return Array.from({ length: n }, () => noise(zPart, random)); };
    const controls = [], extra = [];
    let redraw;
    if (names.length > 1) {   // one button per generator; z and the codes stay as they are
      const sw = choices("生成器", names.length, 0, v => {
        name = names[v];
        m = model(name);
        note.textContent = sourceText() + timing;
        redraw();
      }, names.map(n => modelLabel(model(n).data)));
      sw.buttons.forEach((b, i) => { b.removeAttribute("data-value"); b.dataset.model = names[i]; });
      controls.push(sw.group);
    }
    if (parts.has("label") || parts.has("cat") || parts.has("cont")) {
      // conditional (CGAN) or codes (InfoGAN): one row of fixed noises, the controls pick the rest
      const codes = { label: 0, cat: 0, cont: layout.filter(p => p.part === "cont").map(p => new Float64Array(p.size)) };
      let z = zs(COLS);
      redraw = () => {
        const cont = codes.cont.length ? Float64Array.from(codes.cont.flatMap(c => [...c])) : null;
        inputs = show(canvas, z.map(zi => assemble(layout, { z: zi, label: codes.label, cat: codes.cat, cont })), COLS);
        canvas.setAttribute("aria-label", parts.has("label") ? `数字 ${codes.label} 的 ${COLS} 张图` : `c1 = ${codes.cat} 的 ${COLS} 张图`);
      };
      const key = parts.has("label") ? "label" : "cat";
      const part = layout.find(p => p.part === key);
      if (part) {
        const pick = choices(key === "label" ? "想要的数字 c" : "类别码 c1", part.size, 0, v => { codes[key] = v; redraw(); });
        controls.push(pick.group);
        if (key === "label") {
          controls.push(el("button", { type: "button", class: "npgan-demo-next",
            onclick: () => pick.pick((codes.label + 1) % part.size, false) }, "同样的噪声，换个数字"));
        }
      }
      layout.filter(p => p.part === "cont").forEach(p => {
        for (let i = 0; i < p.size; i++) {
          const s = slider(`c${(part ? 2 : 1) + i}`, p.range[0], p.range[1], 0.1, 0, v => { codes.cont[0][i] = v; redraw(); });
          controls.push(s.row);
        }
      });
      controls.push(el("button", { type: "button", onclick: () => { seed++; z = zs(COLS); redraw(); } }, "换一批噪声"));
    } else {
      // plain GAN (or DCGAN): a grid of samples, and a walk between two noises
      const walkCanvas = el("canvas", { class: "npgan-demo-walk", role: "img" });
      const pathCanvas = el("canvas", { class: "npgan-demo-path", role: "img", "aria-label": "从 z0 到 z1 的 9 步" });
      let ends, t = 0.5;
      const walk = () => show(walkCanvas, [slerp(ends[0], ends[1], t)], 1);
      const newEnds = () => {
        const random = prng(seed * 7919 + 17);
        ends = [noise(zPart, random), noise(zPart, random)];
        show(pathCanvas, Array.from({ length: 9 }, (_, i) => slerp(ends[0], ends[1], i / 8)), 9);
        walk();
      };
      redraw = () => { inputs = show(canvas, zs(4 * COLS), COLS); };
      controls.push(el("button", { type: "button", onclick: () => { seed++; redraw(); } }, "换一批噪声"));
      const s = slider("t", 0, 1, 0.01, t, v => { t = v; walk(); });
      extra.push(el("div", { class: "npgan-demo-walkbox" },
        el("p", {}, "在两个噪声 z0、z1 之间沿球面插值（slerp），拖动 t 从 z0（t = 0）走到 z1（t = 1）："),
        pathCanvas, el("div", { class: "npgan-demo-walkrow" }, walkCanvas, s.row,
          el("button", { type: "button", onclick: () => { seed++; newEnds(); } }, "换两个端点"))));
      newEnds();
      canvas.setAttribute("aria-label", `${4 * COLS} 张 G(z)`);
    }
    let timing = "";   // the time per image, once measured (below)
    const sourceText = () => `权重取自 ${m.data.source}（训练 ${m.data.epoch} 轮后的检查点，每个权重存为 ${m.data.bits} 位整数）。`;
    const note = el("p", { class: "npgan-demo-note" }, sourceText());
    redraw();
    root.dataset.workMs = String(Math.round(performance.now() - begun));   // decoding + first images
    root.replaceChildren(el("div", { class: "npgan-demo-controls" }, ...controls), canvas, ...extra, note);
    root.npganWidget = { canvas, cols: COLS, inputs: () => inputs.map(v => Array.from(v)), model: () => name };
    root.dataset.readyMs = String(Math.round(performance.now()));   // since the page was opened
    root.dataset.state = "ready";
    setTimeout(() => {   // once the page has settled (and the code is compiled): the time per image
      const start = performance.now();
      for (let i = 0; i < 10; i++) generate(name, inputs[0]);
      timing = `每张图都由你的浏览器当场算出，约 ${((performance.now() - start) / 10).toFixed(1)} 毫秒一张。`;
      note.textContent = sourceText() + timing;
    }, 500);
  }

  function start() {
    for (const root of document.querySelectorAll("[data-npgan-demo]")) {
      try { widget(root); } catch (err) {
        root.dataset.state = "error: " + err.message;
        root.replaceChildren(el("p", { class: "npgan-demo-error" }, "生成器没能运行：" + err.message));
      }
    }
  }

  let settle;
  window.npganDemo = {
    ready: new Promise(resolve => { settle = resolve; }),
    models: Object.keys(DATA),
    inputSize: name => model(name).data.inputSize,
    source: name => model(name).data.source,
    generate,
  };
  const go = () => { start(); settle(window.npganDemo); };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", go);
  else go();
})();
