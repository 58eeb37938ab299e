// Decide IAM requests with @cloud-copilot/iam-simulate (test-time only; AGPL, never shipped).
//
// stdin: a JSON list of cases
//   {name, principal, action, resource, accountId, context, identityPolicies: [{name, policy}],
//    resourcePolicy?: {...}, trustPolicy?: {...}}
// stdout: a JSON list, one entry per case, in order
//   {name, checked: {decision, ignoredContextKeys, errors}, unchecked: decision}
//
// `checked` is runSimulation: it validates the policies, the action and the resource, and drops
// context keys its action catalogue does not list for the action. That catalogue knows only a
// fixed set of public OIDC providers (Google, Cognito, GitHub, ...), so a private issuer's
// `<issuer>:aud` is dropped there. `unchecked` is runUnsafeSimulation: the same evaluation
// engine with the context passed verbatim, which is how IAM sees a web-identity request. The
// caller decides which to trust and asserts which keys were dropped.
import { createValidatedPolicy, validateTrustPolicy } from '@cloud-copilot/iam-policy'
import { runSimulation, runUnsafeSimulation } from '@cloud-copilot/iam-simulate'

const readStdin = async () => {
  const chunks = []
  for await (const chunk of process.stdin) chunks.push(chunk)
  return Buffer.concat(chunks).toString('utf8')
}

const simulation = (c, resourcePolicy) => ({
  request: {
    principal: c.principal,
    action: c.action,
    resource: { resource: c.resource, accountId: c.accountId },
    contextVariables: c.context ?? {}
  },
  identityPolicies: c.identityPolicies ?? [],
  serviceControlPolicies: [],
  resourceControlPolicies: [],
  ...(resourcePolicy ? { resourcePolicy } : {})
})

const decide = async (c) => {
  const document = c.trustPolicy ?? c.resourcePolicy
  const checked = await runSimulation(simulation(c, document), {})
  // runUnsafeSimulation loads a plain resource policy without a name and then fails reading
  // it; a validated policy carries its name (and, for trust policies, trust-policy rules).
  const named = document
    ? createValidatedPolicy(
        document,
        c.trustPolicy ? validateTrustPolicy : () => [],
        { name: c.trustPolicy ? 'TrustPolicy' : 'ResourcePolicy' }
      )
    : undefined
  if (named && named.errors.length > 0) {
    return { name: c.name, checked: { errors: named.errors }, unchecked: null }
  }
  const unchecked = runUnsafeSimulation(simulation(c, named), {})
  if (checked.resultType === 'error') {
    return { name: c.name, checked: { errors: checked.errors }, unchecked }
  }
  const ignored =
    checked.resultType === 'single'
      ? checked.result.ignoredContextKeys
      : [...new Set(checked.results.flatMap((r) => r.ignoredContextKeys ?? []))]
  return {
    name: c.name,
    checked: { decision: checked.overallResult, ignoredContextKeys: ignored ?? [], errors: null },
    unchecked
  }
}

const cases = JSON.parse(await readStdin())
const results = []
for (const c of cases) results.push(await decide(c))
process.stdout.write(JSON.stringify(results))
