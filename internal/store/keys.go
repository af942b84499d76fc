package store

import "fmt"

// All keys of the store are built here, under one prefix.
const prefix = "distq:"

func keyRecord(id string) string        { return prefix + "d:" + id }
func keyBatch(id string) string         { return prefix + "b:" + id }
func keyBatchCounts(id string) string   { return prefix + "b:" + id + ":counts" }
func keyBatchItems(id string) string    { return prefix + "b:" + id + ":items" }
func keyTeamAll(team string) string     { return prefix + "team:" + team + ":all" }
func keyTeamBatches(team string) string { return prefix + "team:" + team + ":batches" }
func keyTeamState(team, state string) string {
	return prefix + "team:" + team + ":state:" + state
}
func keyTeamProduct(team, pk string) string { return prefix + "team:" + team + ":pk:" + pk }
func keyActive(uid, pk, target string) string {
	return fmt.Sprintf("%sactive:{%s}:%s:%s", prefix, uid, pk, target)
}

// keyWaiting is the set of the queued distributions of an account that
// wait for reason, kept with the records, for the waiting gauge.
func keyWaiting(account, reason string) string { return prefix + "waiting:" + account + ":" + reason }

// patternActive matches every active key, for SCAN.
const patternActive = prefix + "active:*"

func keyIdem(team, key string) string { return prefix + "idem:" + team + ":" + key }

// keyJob maps a remote JobId to the distribution that owns it.
func keyJob(jobID string) string { return prefix + "job:" + jobID }

// keyOpen holds the ids of every distribution not yet finished, for the
// reconciler.
const keyOpen = prefix + "open"

// keyTeams is the set of teams that have records, for the retention janitor.
const keyTeams = prefix + "teams"

// ChangesChannel is the Pub/Sub channel that carries the id of every
// distribution whose record changed.
const ChangesChannel = prefix + "changes"
