/**
 * The only module that names the Arrow package. Everything else imports Arrow from here, so a
 * version bump or a swap touches one file.
 *
 * Layer: core.
 *
 * @module
 */
export {
  Binary,
  Bool,
  Data,
  DataType,
  DateDay,
  DateMillisecond,
  DateUnit,
  Decimal,
  Field,
  FixedSizeBinary,
  Float32,
  Float64,
  Int16,
  Int32,
  Int64,
  Int8,
  List,
  makeData,
  Precision,
  RecordBatch,
  Schema,
  Struct,
  Table,
  tableFromIPC,
  tableToIPC,
  TimeMicrosecond,
  TimeNanosecond,
  TimestampMicrosecond,
  TimestampNanosecond,
  TimeUnit,
  Type,
  Uint32,
  Uint64,
  Utf8,
  Vector,
} from "apache-arrow";
