// An SVG heatmap: rows × columns of coloured cells, labelled axes, a tooltip per cell, a legend.

import { darkDiverging, diverging, maxAbs } from "./colour.js";
import { h, s } from "./dom.js";
import { legend } from "./legend.js";

const CHAR_W = 7; // px per character of the 12px label font, for margins (labels are measured only roughly)
const MAX_LABEL = 20;

const shortLabel = (text) => (text.length > MAX_LABEL ? `${text.slice(0, MAX_LABEL - 1)}…` : text);
const clamp = (x, lo, hi) => Math.min(Math.max(x, lo), hi);
/** Two decimals, as annotated heatmaps print them (the tooltip has the full value). */
const cellText = (value) => (Math.abs(value) < 0.005 ? "0" : value.toFixed(2));

/**
 * rows, cols: label strings; values[i][j] the cell of rows[i], cols[j] (null: undefined).
 * rowAxis, colAxis: axis names; tip(i, j): the tooltip text; limit: the colour scale's ±end (max |value| if absent).
 * width: the pixels the chart may take; withLegend: false when a group of heatmaps shares one legend.
 */
export function heatmap({ rows, cols, values, rowAxis, colAxis, tip, limit, width = 960, what = "", withLegend = true }) {
  const scale = limit ?? maxAbs(values);
  const rowLabelW = 12 + CHAR_W * Math.max(...rows.map((r) => shortLabel(r).length), 1);
  const colLabelH = 16 + CHAR_W * 0.72 * Math.max(...cols.map((c) => shortLabel(c).length), 1);
  const left = rowLabelW + 22;
  const cellW = clamp(Math.floor((width - left - 40) / cols.length), 8, 48);
  const cellH = clamp(Math.floor(480 / rows.length), 12, 26);
  const gridW = cellW * cols.length;
  const gridH = cellH * rows.length;
  const top = 8;
  const svgW = left + gridW + colLabelH * 0.72 + 8;
  const svgH = top + gridH + colLabelH + 18;
  const showText = cellW >= 40 && cellH >= 18 && cols.length <= 12; // numbers in cells only on small grids

  const cells = [];
  values.forEach((row, i) => {
    row.forEach((value, j) => {
      const x = left + j * cellW;
      const y = top + i * cellH;
      cells.push(s("rect", {
        class: "cell", x, y, width: cellW, height: cellH, fill: diverging(value, scale),
        dataset: { row: i, col: j, value: value === null ? "" : value, tip: tip(i, j) },
      }));
      if (showText && value !== null) {
        cells.push(s("text", {
          class: `cell-text${darkDiverging(value, scale) ? " on-dark" : ""}`, x: x + cellW / 2, y: y + cellH / 2,
          "text-anchor": "middle", "dominant-baseline": "central", "pointer-events": "none", text: cellText(value),
        }));
      }
    });
  });
  const rowLabels = rows.map((label, i) => s("text", {
    class: "row-label", x: left - 6, y: top + i * cellH + cellH / 2, "text-anchor": "end",
    "dominant-baseline": "central", dataset: { index: i }, text: shortLabel(label),
  }));
  const colLabels = cols.map((label, j) => {
    const x = left + j * cellW + cellW / 2;
    const y = top + gridH + 6;
    return s("text", {
      class: "col-label", x, y, transform: `rotate(-45 ${x} ${y})`, "text-anchor": "end",
      "dominant-baseline": "central", dataset: { index: j, label }, text: shortLabel(label),
    });
  });
  const titles = [
    s("text", { class: "axis-title", x: 10, y: top + gridH / 2, transform: `rotate(-90 10 ${top + gridH / 2})`,
      "text-anchor": "middle", "dominant-baseline": "central", text: rowAxis }),
    s("text", { class: "axis-title", x: left + gridW / 2, y: svgH - 4, "text-anchor": "middle", text: colAxis }),
  ];
  const svg = s("svg", {
    class: "heatmap", width: svgW, height: svgH, viewBox: `0 0 ${svgW} ${svgH}`, role: "img",
    "aria-label": `${what || "heatmap"}: ${rowAxis} × ${colAxis}`,
    dataset: { rows: rows.length, cols: cols.length, rowAxis, colAxis },
  }, [s("g", { class: "cells" }, cells), s("g", { class: "row-labels" }, rowLabels),
    s("g", { class: "col-labels" }, colLabels), s("g", {}, titles)]);
  return h("div", { class: "heatmap-wrap" }, [h("div", { class: "scroll" }, svg),
    withLegend ? legend("diverging", scale, what) : null]);
}
