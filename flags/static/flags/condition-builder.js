/*
 * The condition builder: targeting conditions as rows of attribute, comparison and values,
 * combined with "all" or "any", kept in step with the condition's JSON in the textarea it
 * enhances (the textarea is what the form submits; without this script it works alone).
 *
 * The rows read and write the shapes of flags/engine/builder.py, the Python model of the same
 * builder: "is" writes the plain value, adjacent rows on one attribute share its object, "all"
 * falls back to $and and "any" is $or of one object per row. A condition the rows cannot show
 * (nested groups, for instance) stays editable as JSON only.
 *
 * Every builder on the page is set up on load and whenever one is added (an admin inline's
 * "Add another"). No inline script: the catalog (attributes, operators and their words) comes
 * in a JSON data block rendered by the server.
 */
(function () {
  "use strict";

  var PLAIN_ONE = ["$ne", "$gt", "$gte", "$lt", "$lte", "$regex", "$veq", "$vne", "$vgt", "$vgte", "$vlt",
    "$vlte", "$size"];
  var PLAIN_MANY = ["$in", "$nin", "$all"];
  var NUMERIC = ["$gt", "$gte", "$lt", "$lte", "$size"];
  var FREE_VALUES = ["$regex", "$notRegex", "$size"];
  var TYPE_WORDS = {string: "text", number: "a number", "boolean": "true or false",
    semver: "a version such as \"1.2.3\"", list: "a text or a number"};
  var VERSION = /^v?\d+(?:\.\d+)*(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$/;

  function has(list, item) { return list.indexOf(item) !== -1; }
  function isObject(value) { return value !== null && typeof value === "object" && !Array.isArray(value); }
  function isScalar(value) {
    return typeof value === "string" || typeof value === "boolean" || (typeof value === "number" && isFinite(value));
  }
  function isOperatorObject(value) {
    if (!isObject(value)) { return false; }
    var keys = Object.keys(value);
    return keys.length > 0 && keys.every(function (k) { return k.charAt(0) === "$"; });
  }
  function onlyKey(value, key) {
    return isObject(value) && Object.keys(value).length === 1 && Object.prototype.hasOwnProperty.call(value, key);
  }

  // --- rows -> condition -------------------------------------------------------------------------

  function operand(clause) {
    var op = clause.operator, values = clause.values || [], first = values.length ? values[0] : null;
    if (op === "$eq" || has(PLAIN_ONE, op)) { return [op, first]; }
    if (has(PLAIN_MANY, op)) { return [op, values.slice()]; }
    if (op === "$notRegex") { return ["$not", {"$regex": first}]; }
    if (op === "$contains") { return ["$elemMatch", {"$eq": first}]; }
    if (op === "$exists" || op === "$notExists") { return ["$exists", op === "$exists"]; }
    throw new Error("unknown builder operator " + op);
  }

  function expression(clauses) {
    if (clauses.length === 1 && clauses[0].operator === "$eq") {
      var value = operand(clauses[0])[1];
      if (value === null || typeof value !== "object") { return value; }
    }
    var out = {};
    clauses.forEach(function (c) { var pair = operand(c); out[pair[0]] = pair[1]; });
    return out;
  }

  function single(clause) { var out = {}; out[clause.attribute] = expression([clause]); return out; }

  function build(model) {
    var clauses = model.clauses || [];
    if (!clauses.length) { return {}; }
    if (model.match === "any") { return {"$or": clauses.map(single)}; }
    var groups = [];
    clauses.forEach(function (c) {
      var last = groups[groups.length - 1];
      if (last && last[0].attribute === c.attribute) { last.push(c); } else { groups.push([c]); }
    });
    var seen = {}, flat = true;
    groups.forEach(function (g) {
      var attribute = g[0].attribute, keys = {};
      if (Object.prototype.hasOwnProperty.call(seen, attribute)) { flat = false; }
      seen[attribute] = true;
      g.forEach(function (c) {
        var key = operand(c)[0];
        if (keys[key]) { flat = false; }
        keys[key] = true;
      });
    });
    if (!flat) { return {"$and": clauses.map(single)}; }
    var out = {};
    groups.forEach(function (g) { out[g[0].attribute] = expression(g); });
    return out;
  }

  // --- condition -> rows -------------------------------------------------------------------------

  function clauseOf(attribute, op, value) {
    if ((op === "$eq" || has(PLAIN_ONE, op)) && isScalar(value)) { return {attribute: attribute, operator: op, values: [value]}; }
    if (has(PLAIN_MANY, op) && Array.isArray(value) && value.every(isScalar)) {
      return {attribute: attribute, operator: op, values: value.slice()};
    }
    if (op === "$exists" && typeof value === "boolean") {
      return {attribute: attribute, operator: value ? "$exists" : "$notExists", values: []};
    }
    if (op === "$not" && onlyKey(value, "$regex") && isScalar(value.$regex)) {
      return {attribute: attribute, operator: "$notRegex", values: [value.$regex]};
    }
    if (op === "$elemMatch" && onlyKey(value, "$eq") && isScalar(value.$eq)) {
      return {attribute: attribute, operator: "$contains", values: [value.$eq]};
    }
    return null;
  }

  function attributeClauses(attribute, expected) {
    if (!attribute || attribute.charAt(0) === "$") { return null; }
    if (!isOperatorObject(expected)) {
      return isScalar(expected) ? [{attribute: attribute, operator: "$eq", values: [expected]}] : null;
    }
    var out = [];
    var keys = Object.keys(expected);
    for (var i = 0; i < keys.length; i++) {
      var clause = clauseOf(attribute, keys[i], expected[keys[i]]);
      if (!clause) { return null; }
      out.push(clause);
    }
    return out;
  }

  function objectClauses(condition) {
    var out = [];
    var keys = Object.keys(condition);
    for (var i = 0; i < keys.length; i++) {
      var clauses = attributeClauses(keys[i], condition[keys[i]]);
      if (!clauses) { return null; }
      out = out.concat(clauses);
    }
    return out;
  }

  function parse(condition) {
    if (condition === null || condition === undefined) { return {match: "all", clauses: []}; }
    if (!isObject(condition)) { return null; }
    var keys = Object.keys(condition);
    if (!keys.length) { return {match: "all", clauses: []}; }
    if (keys.length === 1 && (keys[0] === "$and" || keys[0] === "$or")) {
      var items = condition[keys[0]];
      if (!Array.isArray(items) || !items.length || !items.every(isObject)) { return null; }
      var parts = items.map(objectClauses);
      if (parts.some(function (p) { return p === null; })) { return null; }
      if (keys[0] === "$or") {
        if (parts.some(function (p) { return p.length !== 1; })) { return null; }
        return {match: "any", clauses: parts.map(function (p) { return p[0]; })};
      }
      return {match: "all", clauses: [].concat.apply([], parts)};
    }
    var clauses = objectClauses(condition);
    return clauses === null ? null : {match: "all", clauses: clauses};
  }

  // --- the widget ---------------------------------------------------------------------------------

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  function option(value, label, selected) {
    var node = element("option", "", label);
    node.value = value;
    node.selected = !!selected;
    return node;
  }

  function shown(value) { return typeof value === "string" ? value : JSON.stringify(value); }

  function Builder(root) {
    this.root = root;
    this.textarea = root.querySelector("textarea");
    this.catalog = JSON.parse(root.querySelector("script[type='application/json']").textContent);
    this.definitions = {};
    var self = this;
    this.catalog.attributes.forEach(function (a) { self.definitions[a.name] = a; });
    this.panel = root.querySelector(".cb-builder");
    this.rowsList = root.querySelector(".cb-rows");
    this.matchSelect = root.querySelector(".cb-match");
    this.note = root.querySelector(".cb-note");
    this.warningList = root.querySelector(".cb-warnings");
    this.template = root.querySelector("template.cb-row-template");
    this.rows = [];
    this.panel.hidden = false;
    root.querySelector(".cb-add").addEventListener("click", function () { self.addRow(null, true); });
    this.matchSelect.addEventListener("change", function () { self.write(); });
    this.textarea.addEventListener("input", function () { self.read(); });
    this.read();
  }

  Builder.prototype.typeOf = function (attribute) {
    var d = this.definitions[attribute];
    return d ? d.type : "unknown";
  };

  Builder.prototype.operatorsFor = function (attribute) {
    return this.catalog.types[this.typeOf(attribute)] || this.catalog.types.unknown;
  };

  Builder.prototype.labelOf = function (op, attribute) {
    var pairs = this.operatorsFor(attribute);
    for (var i = 0; i < pairs.length; i++) { if (pairs[i][0] === op) { return pairs[i][1]; } }
    var known = this.catalog.operators[op];
    return known ? known.label : op;
  };

  // Reads the textarea: rows when the JSON can be shown as rows, a note otherwise.
  Builder.prototype.read = function () {
    var text = this.textarea.value.trim(), condition;
    try {
      condition = text ? JSON.parse(text) : {};
    } catch (error) {
      this.setNote("The JSON below is not valid yet (" + error.message + "); the rows show the last valid condition.");
      return;
    }
    var model = parse(condition);
    if (model === null) {
      this.setNote("This condition has more structure than rows can show (groups within groups, for instance): "
        + "edit it as JSON below.");
      this.rowsList.hidden = true;
      this.warn(condition);
      return;
    }
    this.setNote("");
    this.rowsList.hidden = false;
    if (!text && this.rows.length) {
      // Emptied by hand: keep the choice of all / any.
      model.match = this.matchSelect.value;
    }
    this.matchSelect.value = model.match;
    this.rowsList.textContent = "";
    this.rows = [];
    var self = this;
    model.clauses.forEach(function (clause) { self.addRow(clause, false); });
    this.warn(condition);
  };

  Builder.prototype.setNote = function (text) {
    this.note.textContent = text;
    this.note.hidden = !text;
  };

  Builder.prototype.model = function () {
    var clauses = [];
    this.rows.forEach(function (row) {
      var clause = row.clause();
      if (clause) { clauses.push(clause); }
    });
    return {match: this.matchSelect.value === "any" ? "any" : "all", clauses: clauses};
  };

  // Writes the rows into the textarea (empty: everyone).
  Builder.prototype.write = function () {
    var condition = build(this.model());
    this.textarea.value = Object.keys(condition).length ? JSON.stringify(condition, null, 2) : "";
    this.setNote("");
    this.rowsList.hidden = false;
    this.warn(condition);
  };

  Builder.prototype.addRow = function (clause, focus) {
    var row = new Row(this, clause);
    this.rows.push(row);
    this.rowsList.appendChild(row.node);
    if (focus) { row.attributeSelect.focus(); }
  };

  Builder.prototype.removeRow = function (row) {
    this.rows.splice(this.rows.indexOf(row), 1);
    row.node.remove();
    this.write();
  };

  // What deserves a second look (never a reason to refuse the condition), as the server says it.
  Builder.prototype.warn = function (condition) {
    var self = this, warnings = [], seen = {};
    (function walk(item) {
      if (!isObject(item)) { return; }
      Object.keys(item).forEach(function (key) {
        var value = item[key];
        if (key === "$and" || key === "$or" || key === "$nor") {
          if (Array.isArray(value)) { value.forEach(walk); }
        } else if (key === "$not") {
          walk(value);
        } else if (key.charAt(0) !== "$" && !seen[key]) {
          seen[key] = true;
          if (!self.definitions[key]) {
            warnings.push(key + " is not a defined attribute: check its spelling, or define it so that the builder "
              + "knows its type and values. Units whose context lacks it are treated as not having it.");
          }
        }
      });
    })(condition);
    var model = parse(condition);
    (model ? model.clauses : []).forEach(function (clause) {
      var definition = self.definitions[clause.attribute];
      if (!definition) { return; }
      var label = self.labelOf(clause.operator, clause.attribute);
      var ops = self.catalog.types[definition.type].map(function (p) { return p[0]; });
      if (!has(ops, clause.operator)) {
        warnings.push(clause.attribute + " is a " + definition.type + " attribute: '" + label + "' is not meant for it.");
        return;
      }
      if (has(FREE_VALUES, clause.operator)) { return; }
      var allowed = definition.allowed_values || [];
      clause.values.forEach(function (value) {
        if (!fits(value, definition.type)) {
          warnings.push(clause.attribute + " " + label + " " + shown(value) + ": " + shown(value) + " is not "
            + TYPE_WORDS[definition.type] + ".");
        } else if (allowed.length && !has(allowed, value)) {
          warnings.push(clause.attribute + " " + label + " " + shown(value) + ": " + shown(value)
            + " is not one of the allowed values of " + clause.attribute + ".");
        }
      });
    });
    this.warningList.textContent = "";
    warnings.forEach(function (text) { self.warningList.appendChild(element("li", "", text)); });
    this.warningList.hidden = !warnings.length;
  };

  function fits(value, type) {
    var number = typeof value === "number";
    if (type === "number") { return number; }
    if (type === "boolean") { return typeof value === "boolean"; }
    if (type === "semver") { return typeof value === "string" && VERSION.test(value); }
    return typeof value === "string" || (type === "list" && number);
  }

  // --- one row ------------------------------------------------------------------------------------

  function Row(builder, clause) {
    this.builder = builder;
    this.node = builder.template.content.firstElementChild.cloneNode(true);
    this.attributeSelect = this.node.querySelector(".cb-attribute");
    this.otherInput = this.node.querySelector(".cb-attribute-other");
    this.operatorSelect = this.node.querySelector(".cb-operator");
    this.valuesBox = this.node.querySelector(".cb-values");
    this.values = clause ? clause.values.slice() : [];
    var self = this;
    this.fillAttributes(clause ? clause.attribute : "");
    this.fillOperators(clause ? clause.operator : "");
    this.fillValues();
    this.attributeSelect.addEventListener("change", function () {
      self.otherInput.hidden = self.attributeSelect.value !== "__other__";
      if (!self.otherInput.hidden) { self.otherInput.focus(); }
      self.values = [];
      self.fillOperators(self.operatorSelect.value);
      self.fillValues();
      builder.write();
    });
    this.otherInput.addEventListener("input", function () {
      self.fillOperators(self.operatorSelect.value);
      builder.write();
    });
    this.operatorSelect.addEventListener("change", function () {
      var arity = self.arity();
      if (arity === "none") { self.values = []; }
      if (arity === "one") { self.values = self.values.slice(0, 1); }
      self.fillValues();
      builder.write();
    });
    this.node.querySelector(".cb-remove").addEventListener("click", function () { builder.removeRow(self); });
  }

  Row.prototype.attribute = function () {
    var value = this.attributeSelect.value;
    return value === "__other__" ? this.otherInput.value.trim() : value;
  };

  Row.prototype.fillAttributes = function (current) {
    var select = this.attributeSelect, defined = this.builder.definitions;
    select.textContent = "";
    select.appendChild(option("", "Pick an attribute…", !current));
    this.builder.catalog.attributes.forEach(function (a) {
      select.appendChild(option(a.name, a.name, a.name === current));
    });
    var other = current && !defined[current];
    select.appendChild(option("__other__", "Another attribute (type its name)…", other));
    this.otherInput.hidden = !other;
    this.otherInput.value = other ? current : "";
  };

  Row.prototype.fillOperators = function (current) {
    var select = this.operatorSelect, builder = this.builder, attribute = this.attribute();
    var pairs = builder.operatorsFor(attribute);
    var known = pairs.some(function (p) { return p[0] === current; });
    select.textContent = "";
    pairs.forEach(function (p, index) {
      select.appendChild(option(p[0], p[1], known ? p[0] === current : index === 0));
    });
    if (current && !known && builder.catalog.operators[current]) {
      // Read from JSON, not meant for this type: kept, and warned about.
      select.appendChild(option(current, builder.labelOf(current, attribute) + " (not for this type)", true));
    }
  };

  Row.prototype.arity = function () {
    var op = this.builder.catalog.operators[this.operatorSelect.value];
    return op ? op.arity : "one";
  };

  // The values as the attribute's type takes them ("18" is 18 for a number attribute).
  Row.prototype.typed = function (text) {
    var type = this.builder.typeOf(this.attribute()), op = this.operatorSelect.value;
    var numeric = text.trim() !== "" && isFinite(Number(text));
    if (type === "boolean") { return text === "true" ? true : text === "false" ? false : text; }
    if ((type === "number" || has(NUMERIC, op)) && numeric) { return Number(text); }
    if (type === "list" && numeric) {
      var allowed = (this.builder.definitions[this.attribute()] || {}).allowed_values || [];
      if (has(allowed, Number(text))) { return Number(text); }
    }
    return text;
  };

  Row.prototype.fillValues = function () {
    var self = this, box = this.valuesBox, builder = this.builder, attribute = this.attribute();
    var arity = this.arity(), type = builder.typeOf(attribute), op = this.operatorSelect.value;
    var definition = builder.definitions[attribute];
    var allowed = definition && !has(FREE_VALUES, op) ? (definition.allowed_values || []) : [];
    box.textContent = "";
    if (arity === "none") { return; }
    if (arity === "one") {
      var current = this.values.length ? this.values[0] : undefined, input;
      if (type === "boolean" && !has(FREE_VALUES, op)) {
        input = element("select", "cb-value");
        input.appendChild(option("", "…", current === undefined));
        input.appendChild(option("true", "true", current === true));
        input.appendChild(option("false", "false", current === false));
      } else if (allowed.length) {
        input = element("select", "cb-value");
        input.appendChild(option("", "Pick a value…", current === undefined));
        var choices = allowed.slice();
        if (current !== undefined && !has(choices, current)) { choices.push(current); }
        choices.forEach(function (v) { input.appendChild(option(shown(v), shown(v), v === current)); });
      } else {
        input = element("input", "cb-value");
        input.type = type === "number" || op === "$size" ? "number" : "text";
        if (input.type === "number") { input.step = "any"; }
        input.placeholder = type === "semver" ? "1.2.3" : op === "$regex" || op === "$notRegex" ? "pattern" : "value";
        input.value = current === undefined ? "" : shown(current);
      }
      input.setAttribute("aria-label", "Value");
      input.addEventListener(input.tagName === "SELECT" ? "change" : "input", function () {
        self.values = input.value === "" ? [] : [self.typed(input.value)];
        builder.write();
      });
      box.appendChild(input);
      return;
    }
    if (allowed.length) {
      var values = this.values.slice();
      var listed = allowed.concat(values.filter(function (v) { return !has(allowed, v); }));
      listed.forEach(function (v) {
        var label = element("label", "cb-choice");
        var box_ = element("input");
        box_.type = "checkbox";
        box_.value = shown(v);
        box_.checked = has(values, v);
        box_.addEventListener("change", function () {
          self.values = listed.filter(function (item, index) {
            return box.querySelectorAll("input[type=checkbox]")[index].checked;
          });
          builder.write();
        });
        label.appendChild(box_);
        label.appendChild(document.createTextNode(" " + shown(v)));
        box.appendChild(label);
      });
      return;
    }
    var text = element("input", "cb-value cb-list");
    text.type = "text";
    text.placeholder = "values, separated by commas";
    text.setAttribute("aria-label", "Values");
    text.value = this.values.map(shown).join(", ");
    text.addEventListener("input", function () {
      self.values = text.value.split(",").map(function (v) { return v.trim(); })
        .filter(function (v) { return v !== ""; }).map(function (v) { return self.typed(v); });
      builder.write();
    });
    box.appendChild(text);
  };

  // The row as a clause; null while it is incomplete (left out of the JSON).
  Row.prototype.clause = function () {
    var attribute = this.attribute(), arity = this.arity();
    this.node.classList.remove("cb-incomplete");
    if (!attribute || attribute.charAt(0) === "$" || (arity === "one" && !this.values.length)) {
      this.node.classList.add("cb-incomplete");
      return null;
    }
    return {attribute: attribute, operator: this.operatorSelect.value, values: this.values.slice()};
  };

  // --- set up -------------------------------------------------------------------------------------

  function setUp(scope) {
    var roots = scope.querySelectorAll ? scope.querySelectorAll("[data-condition-builder]") : [];
    Array.prototype.forEach.call(roots, function (root) {
      var textarea = root.querySelector("textarea");
      // The hidden form an admin inline copies for "Add another" is set up once copied.
      if (root.hasAttribute("data-ready") || !textarea || textarea.name.indexOf("__prefix__") !== -1) { return; }
      root.setAttribute("data-ready", "");
      new Builder(root);
    });
  }

  window.conditionBuilder = {parse: parse, build: build};

  function start() {
    setUp(document);
    new MutationObserver(function (records) {
      records.forEach(function (record) {
        Array.prototype.forEach.call(record.addedNodes, function (node) {
          if (node.nodeType === 1) { setUp(node.parentNode || node); }
        });
      });
    }).observe(document.body, {childList: true, subtree: true});
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
