import type { StandardSchemaV1 } from '@standard-schema/spec';
import { InputValidationError } from '../errors.js';
import type { AnyTaskDefinition } from './define.js';

/** Runs the type's Standard Schema on `input`; every issue, with its path, goes into one InputValidationError. */
export async function validateInput(def: AnyTaskDefinition, input: unknown): Promise<unknown> {
  const result = await (def.input as StandardSchemaV1)['~standard'].validate(input);
  if (result.issues) {
    const issues = result.issues.map((issue) => ({
      path: (issue.path ?? []).map((p) => String(typeof p === 'object' ? p.key : p)).join('.'),
      message: issue.message,
    }));
    throw new InputValidationError(`${def.app}/${def.type}`, issues);
  }
  return result.value;
}
