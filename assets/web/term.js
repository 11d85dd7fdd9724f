// A small terminal emulator for tcplab web: the VT100/xterm subset a shell and the lab's
// commands use (cursor movement, erase, scroll regions, insert/delete, SGR colours), drawn
// as lines of text. Input: keys become the bytes a terminal sends.
"use strict";

class VTerm {
  constructor(el, cols, rows) {
    this.el = el;
    this.cols = cols;
    this.rows = rows;
    this.decoder = new TextDecoder("utf-8");
    this.onData = () => {};
    this.reset();
    el.tabIndex = 0;
    el.addEventListener("keydown", (e) => this.key(e));
    el.addEventListener("paste", (e) => {
      this.onData(e.clipboardData.getData("text"));
      e.preventDefault();
    });
    this.render();
  }

  reset() {
    this.grid = [];
    for (let r = 0; r < this.rows; r++) this.grid.push(this.blank());
    this.x = 0;
    this.y = 0;
    this.top = 0;
    this.bottom = this.rows - 1;
    this.attr = "";
    this.state = "text";
    this.params = "";
    this.saved = [0, 0];
    this.scrollback = [];
  }

  blank() {
    return Array.from({ length: this.cols }, () => [" ", ""]);
  }

  // Text of the screen (tests read it).
  text() {
    return this.grid.map((row) => row.map((c) => c[0]).join("").replace(/\s+$/, "")).join("\n");
  }

  write(data) {
    const s = typeof data === "string" ? data : this.decoder.decode(data, { stream: true });
    for (const ch of s) this.feed(ch);
    this.render();
  }

  feed(ch) {
    const c = ch.codePointAt(0);
    switch (this.state) {
      case "esc":
        return this.escape(ch);
      case "csi":
        if (c >= 0x40 && c <= 0x7e) {
          this.state = "text";
          return this.csi(ch, this.params);
        }
        this.params += ch;
        return;
      case "osc":
        if (c === 7) this.state = "text";
        else if (c === 0x1b) this.state = "oscesc";
        return;
      case "oscesc":
        this.state = "text";
        return;
      case "charset":
        this.state = "text";
        return;
    }
    if (c === 0x1b) {
      this.state = "esc";
    } else if (c === 13) {
      this.x = 0;
    } else if (c === 10 || c === 11 || c === 12) {
      this.lineFeed();
    } else if (c === 8) {
      if (this.x > 0) this.x--;
    } else if (c === 9) {
      this.x = Math.min(this.cols - 1, (Math.floor(this.x / 8) + 1) * 8);
    } else if (c >= 32) {
      if (this.x >= this.cols) {
        this.x = 0;
        this.lineFeed();
      }
      this.grid[this.y][this.x] = [ch, this.attr];
      this.x++;
    }
  }

  escape(ch) {
    this.state = "text";
    if (ch === "[") {
      this.state = "csi";
      this.params = "";
    } else if (ch === "]") {
      this.state = "osc";
    } else if (ch === "(" || ch === ")") {
      this.state = "charset";
    } else if (ch === "7") {
      this.saved = [this.x, this.y];
    } else if (ch === "8") {
      [this.x, this.y] = this.saved;
    } else if (ch === "M") {
      if (this.y === this.top) this.scrollDown(1);
      else if (this.y > 0) this.y--;
    } else if (ch === "D") {
      this.lineFeed();
    } else if (ch === "c") {
      this.reset();
    }
  }

  csi(final, p) {
    const priv = p.startsWith("?");
    const nums = (priv ? p.slice(1) : p).split(";").map((v) => parseInt(v, 10));
    const n = (i, d) => (isNaN(nums[i]) || nums[i] === 0 ? d : nums[i]);
    const clampX = (v) => Math.max(0, Math.min(this.cols - 1, v));
    const clampY = (v) => Math.max(0, Math.min(this.rows - 1, v));
    switch (final) {
      case "A": this.y = clampY(this.y - n(0, 1)); break;
      case "B": this.y = clampY(this.y + n(0, 1)); break;
      case "C": this.x = clampX(this.x + n(0, 1)); break;
      case "D": this.x = clampX(Math.min(this.x, this.cols - 1) - n(0, 1)); break;
      case "G": this.x = clampX(n(0, 1) - 1); break;
      case "d": this.y = clampY(n(0, 1) - 1); break;
      case "H": case "f": this.y = clampY(n(0, 1) - 1); this.x = clampX(n(1, 1) - 1); break;
      case "J": this.eraseDisplay(isNaN(nums[0]) ? 0 : nums[0]); break;
      case "K": this.eraseLine(isNaN(nums[0]) ? 0 : nums[0]); break;
      case "L": for (let i = 0; i < n(0, 1); i++) this.insertLine(); break;
      case "M": for (let i = 0; i < n(0, 1); i++) this.deleteLine(); break;
      case "P": this.grid[this.y].splice(this.x, n(0, 1)); while (this.grid[this.y].length < this.cols) this.grid[this.y].push([" ", ""]); break;
      case "@": for (let i = 0; i < n(0, 1); i++) { this.grid[this.y].splice(this.x, 0, [" ", ""]); this.grid[this.y].length = this.cols; } break;
      case "X": for (let i = 0; i < n(0, 1) && this.x + i < this.cols; i++) this.grid[this.y][this.x + i] = [" ", ""]; break;
      case "r": this.top = clampY(n(0, 1) - 1); this.bottom = clampY(n(1, this.rows) - 1); this.x = 0; this.y = 0; break;
      case "S": this.scrollUp(n(0, 1)); break;
      case "T": this.scrollDown(n(0, 1)); break;
      case "m": this.sgr(nums); break;
      case "s": this.saved = [this.x, this.y]; break;
      case "u": [this.x, this.y] = this.saved; break;
      case "n": if (nums[0] === 6) this.onData(`\x1b[${this.y + 1};${this.x + 1}R`); break;
      default: break; // modes (h, l) and the rest: ignored
    }
  }

  sgr(nums) {
    const classes = new Set(this.attr ? this.attr.split(" ") : []);
    if (nums.length === 0 || isNaN(nums[0])) nums = [0];
    for (const v of nums) {
      if (v === 0) classes.clear();
      else if (v === 1) classes.add("b");
      else if (v === 7) classes.add("rv");
      else if (v === 22) classes.delete("b");
      else if (v === 27) classes.delete("rv");
      else if ((v >= 30 && v <= 37) || (v >= 90 && v <= 97)) {
        for (const k of [...classes]) if (k.startsWith("f")) classes.delete(k);
        classes.add("f" + (v % 10));
      } else if (v === 39) {
        for (const k of [...classes]) if (k.startsWith("f")) classes.delete(k);
      }
    }
    this.attr = [...classes].join(" ");
  }

  lineFeed() {
    if (this.y === this.bottom) this.scrollUp(1);
    else if (this.y < this.rows - 1) this.y++;
  }

  scrollUp(k) {
    for (let i = 0; i < k; i++) {
      const gone = this.grid.splice(this.top, 1)[0];
      if (this.top === 0) {
        this.scrollback.push(gone);
        if (this.scrollback.length > 500) this.scrollback.shift();
      }
      this.grid.splice(this.bottom, 0, this.blank());
    }
  }

  scrollDown(k) {
    for (let i = 0; i < k; i++) {
      this.grid.splice(this.bottom, 1);
      this.grid.splice(this.top, 0, this.blank());
    }
  }

  insertLine() {
    this.grid.splice(this.bottom, 1);
    this.grid.splice(this.y, 0, this.blank());
  }

  deleteLine() {
    this.grid.splice(this.y, 1);
    this.grid.splice(this.bottom, 0, this.blank());
  }

  eraseLine(mode) {
    const row = this.grid[this.y];
    const [a, b] = mode === 0 ? [this.x, this.cols] : mode === 1 ? [0, this.x + 1] : [0, this.cols];
    for (let i = a; i < b && i < this.cols; i++) row[i] = [" ", ""];
  }

  eraseDisplay(mode) {
    if (mode === 0) {
      this.eraseLine(0);
      for (let r = this.y + 1; r < this.rows; r++) this.grid[r] = this.blank();
    } else if (mode === 1) {
      this.eraseLine(1);
      for (let r = 0; r < this.y; r++) this.grid[r] = this.blank();
    } else {
      for (let r = 0; r < this.rows; r++) this.grid[r] = this.blank();
    }
  }

  render() {
    const esc = (t) => t.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
    const lines = this.grid.map((row, r) => {
      let html = "";
      let run = "";
      let cls = null;
      const flush = () => {
        if (run) html += cls ? `<span class="${cls}">${esc(run)}</span>` : esc(run);
        run = "";
      };
      row.forEach(([ch, a], c) => {
        const k = r === this.y && c === this.x ? (a + " cur").trim() : a;
        if (k !== cls) {
          flush();
          cls = k;
        }
        run += ch;
      });
      flush();
      return html;
    });
    this.el.innerHTML = lines.join("\n");
  }

  key(e) {
    const map = {
      Enter: "\r", Backspace: "\x7f", Tab: "\t", Escape: "\x1b",
      ArrowUp: "\x1b[A", ArrowDown: "\x1b[B", ArrowRight: "\x1b[C", ArrowLeft: "\x1b[D",
      Home: "\x1b[H", End: "\x1b[F", Delete: "\x1b[3~", PageUp: "\x1b[5~", PageDown: "\x1b[6~",
    };
    let out = null;
    if (map[e.key]) out = map[e.key];
    else if (e.ctrlKey && e.key.length === 1) {
      const c = e.key.toUpperCase().charCodeAt(0);
      if (c >= 64 && c <= 95) out = String.fromCharCode(c - 64);
    } else if (e.key.length === 1 && !e.metaKey) out = e.key;
    if (out !== null) {
      e.preventDefault();
      this.onData(out);
    }
  }
}

window.VTerm = VTerm;
