import type { Summary } from '../lib/stats';

export interface ItemResult {
  item: number;
  title: string;
  goal: string;
  /** Absent when the item yields no ratio (e.g. a comparison that could not be run here). */
  ratio?: Summary;
  met?: (median: number) => boolean;
  details: Record<string, unknown>;
  notes?: string[];
}
