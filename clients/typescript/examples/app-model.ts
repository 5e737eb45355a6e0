// The example app's own WatermelonDB schema and models, as it had them before fieldsync. A line
// that ends in `// fieldsync` is one the app added to adopt it (counted as glue by glue.test.ts).

import { Model, tableSchema } from '@nozbe/watermelondb';
import { fieldsyncColumns } from '@fieldsync/client/watermelondb';

export const appTables = [
  tableSchema({
    name: 'tasks',
    columns: [
      { name: 'title', type: 'string' },
      { name: 'status', type: 'string' },
      { name: 'checklist', type: 'string' },
      { name: 'completion_note', type: 'string', isOptional: true },
      ...fieldsyncColumns, // fieldsync
    ],
  }),
  tableSchema({
    name: 'customers',
    columns: [
      { name: 'name', type: 'string' },
      { name: 'phone', type: 'string', isOptional: true },
      ...fieldsyncColumns, // fieldsync
    ],
  }),
];

export class Task extends Model {
  static override table = 'tasks';
}
export class Customer extends Model {
  static override table = 'customers';
}
export const appModels = [Task, Customer];
