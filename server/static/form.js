// An endpoint's form, made from its parameters' JSON Schema (GET api/endpoints): a
// labelled field per parameter with its type, bounds, required mark and description,
// checked as it is typed by the rules the terminal UI uses (app/forms.py).

const TRUE = new Set(["true", "yes", "on", "1"]);
const FALSE = new Set(["false", "no", "off", "0"]);

/** Each parameter's schema, flattened: `X | None` becomes X with `nullable`, and
 * `required` marks what the object requires. */
export function fieldsOf(schema) {
  const required = new Set(schema?.required ?? []);
  const fields = {};
  for (const [name, property] of Object.entries(schema?.properties ?? {})) {
    let field = { ...property };
    const members = field.anyOf;
    if (members) {
      delete field.anyOf;
      const others = members.filter((m) => m.type !== "null");
      field.nullable = others.length < members.length;
      if (others.length) field = { ...others[0], ...field };
    }
    if (field.enum && !field.type) field.type = "string";
    field.required = required.has(name);
    fields[name] = field;
  }
  return fields;
}

export function formatValue(value) {
  if (value === null || value === undefined) return "";
  return String(value);
}

/** The value `text` stands for under a field's schema; throws an Error saying why not. */
export function parseValue(field, text) {
  const kind = field.type ?? "string";
  const stripped = text.trim();
  if (field.nullable && (stripped === "" || stripped === "null")) return null;
  let value = text;
  if (kind === "integer") {
    value = Number(stripped.replaceAll("_", ""));
    if (stripped === "" || !Number.isInteger(value)) throw new Error(numberMessage(field));
  } else if (kind === "number") {
    value = stripped === "" ? Number.NaN : Number(stripped.replaceAll("_", ""));
    if (!Number.isFinite(value)) throw new Error(numberMessage(field));
  } else if (kind === "boolean") {
    if (TRUE.has(stripped.toLowerCase())) value = true;
    else if (FALSE.has(stripped.toLowerCase())) value = false;
    else throw new Error("must be true or false");
  }
  checkBounds(field, value);
  return value;
}

function checkBounds(field, value) {
  if (typeof value === "number") {
    if (field.minimum !== undefined && value < field.minimum) {
      throw new Error(`must be at least ${field.minimum}`);
    }
    if (field.maximum !== undefined && value > field.maximum) {
      throw new Error(`must be at most ${field.maximum}`);
    }
  } else if (typeof value === "string") {
    if (field.enum && !field.enum.includes(value)) {
      throw new Error(`must be one of ${field.enum.join(", ")}`);
    }
    if (field.maxLength !== undefined && value.length > field.maxLength) {
      throw new Error(`must be at most ${field.maxLength} characters`);
    }
    const minLength = field.minLength ?? 0;
    if (minLength && !value.trim()) {
      // Blank means not given, as the server reads it too.
      throw new Error(field.required ? "is required" : "must not be blank");
    }
    if (value.length < minLength) throw new Error(`must be at least ${minLength} characters`);
    if (field.pattern && !new RegExp(field.pattern, "u").test(value)) {
      throw new Error(`must match the pattern ${field.pattern}`);
    }
  }
}

function element(tag, attributes = {}, text = "") {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value !== undefined && value !== null && value !== false) node.setAttribute(name, value);
  }
  if (text) node.textContent = text;
  return node;
}

function control(name, field, id) {
  if (field.enum) {
    const select = element("select", { id, name });
    for (const choice of field.enum) {
      select.append(element("option", { value: choice }, choice));
    }
    select.value = field.default ?? field.enum[0];
    return select;
  }
  if (field.type === "boolean") {
    const box = element("input", { id, name, type: "checkbox" });
    box.checked = Boolean(field.default);
    return box;
  }
  const numeric = field.type === "integer" || field.type === "number";
  // The schema's own words for the browser (the form is novalidate: its messages are
  // ours, the same as the terminal UI's, shown beside the field).
  const input = element("input", {
    id,
    name,
    type: numeric ? "number" : "text",
    step: field.type === "integer" ? "1" : numeric ? "any" : undefined,
    min: field.minimum,
    max: field.maximum,
    maxlength: field.maxLength,
    minlength: field.minLength,
    required: field.required ? "" : undefined,
    autocomplete: "off",
    spellcheck: numeric ? undefined : "false",
  });
  input.value = formatValue(field.default);
  return input;
}

function numberMessage(field) {
  return field.type === "integer" ? "must be a whole number" : "must be a number";
}

/** What a field's hint says: its type and bounds, then its description. */
function hintOf(field) {
  const parts = [];
  const kind = field.enum ? null : field.type === "integer" ? "whole number" : field.type;
  if (kind && kind !== "boolean") parts.push(kind);
  if (field.minimum !== undefined || field.maximum !== undefined) {
    parts.push(`${field.minimum ?? ""}..${field.maximum ?? ""}`);
  }
  if (field.maxLength !== undefined) parts.push(`at most ${field.maxLength} characters`);
  if (field.nullable) parts.push("may be left empty");
  const head = parts.join(", ");
  return [head, field.description].filter(Boolean).join(" · ");
}

/** An endpoint's fields, Advanced › Handle stream, and Run. */
export class EndpointForm {
  /**
   * @param {object} endpoint One of GET api/endpoints' endpoints.
   * @param {{handleStream: boolean, onRun: (values: object, handleStream: boolean) => void}} options
   */
  constructor(endpoint, { handleStream = true, onRun }) {
    this.endpoint = endpoint;
    this.fields = fieldsOf(endpoint.params);
    this.onRun = onRun;
    this.node = this._build(handleStream);
  }

  get handleStream() {
    return this.node.querySelector("#handle-stream").checked;
  }

  _build(handleStream) {
    const form = element("form", { class: "endpoint-form", novalidate: "" });
    form.setAttribute("aria-labelledby", "form-title");
    form.append(element("h2", { id: "form-title" }, this.endpoint.title || this.endpoint.name));
    if (this.endpoint.description) {
      form.append(element("p", { class: "form-description" }, this.endpoint.description));
    }
    for (const [name, field] of Object.entries(this.fields)) {
      const id = `param-${name}`;
      const row = element("div", { class: field.type === "boolean" ? "field -check" : "field" });
      const label = element("label", { for: id }, name);
      if (field.required) label.append(element("span", { class: "required" }, " (required)"));
      const input = control(name, field, id);
      const hint = element("p", { class: "field-hint", id: `hint-${name}` }, hintOf(field));
      const error = element("p", { class: "field-error", id: `error-${name}`, hidden: "" });
      input.setAttribute("aria-describedby", `hint-${name} error-${name}`);
      if (input.tagName === "INPUT" && input.type !== "checkbox") {
        input.addEventListener("input", () => this._check(name));
      }
      row.append(label, input, hint, error);
      form.append(row);
    }
    const advanced = element("details", { class: "advanced", open: "" });
    advanced.append(element("summary", {}, "Advanced"));
    const toggle = element("div", { class: "field -check" });
    const box = element("input", { id: "handle-stream", type: "checkbox", role: "switch" });
    box.checked = handleStream;
    toggle.append(
      element("label", { for: "handle-stream" }, "Handle stream"),
      box,
      element(
        "p",
        { class: "field-hint" },
        "On: the card follows each message. Off: it shows them only when the call finishes.",
      ),
    );
    advanced.append(toggle);
    form.append(advanced);
    form.append(element("button", { type: "submit", id: "run", class: "primary" }, "Run"));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const values = this.values();
      if (values !== null) this.onRun(values, this.handleStream);
    });
    return form;
  }

  /** Every parameter's value, or null after marking the fields that are wrong. */
  values() {
    const values = {};
    let firstBad = null;
    for (const [name, field] of Object.entries(this.fields)) {
      const input = this.node.querySelector(`#param-${CSS.escape(name)}`);
      if (input.type === "checkbox") values[name] = input.checked;
      else if (input.tagName === "SELECT") values[name] = input.value;
      else if (this._check(name)) values[name] = parseValue(field, input.value);
      else firstBad ??= input;
    }
    if (firstBad !== null) {
      firstBad.focus();
      return null;
    }
    return values;
  }

  /** Check one text field, showing or clearing its message; true when it is right. */
  _check(name) {
    const input = this.node.querySelector(`#param-${CSS.escape(name)}`);
    const error = this.node.querySelector(`#error-${CSS.escape(name)}`);
    try {
      // What a number field holds that is not a number, it reports as "" and badInput.
      if (input.validity.badInput) throw new Error(numberMessage(this.fields[name]));
      parseValue(this.fields[name], input.value);
    } catch (problem) {
      error.textContent = `${name} ${problem.message}`;
      error.hidden = false;
      input.setAttribute("aria-invalid", "true");
      return false;
    }
    error.textContent = "";
    error.hidden = true;
    input.removeAttribute("aria-invalid");
    return true;
  }
}
