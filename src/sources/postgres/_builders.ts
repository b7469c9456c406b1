/**
 * Columnar builders of the PostgreSQL decoder; the implementation is shared with the other
 * engines in `../_arrow_columns.ts`.
 *
 * @module
 */
export { BoolBuilder, Builder, FixedBuilder, ListBuilder, VarBuilder } from "../_arrow_columns.ts";
