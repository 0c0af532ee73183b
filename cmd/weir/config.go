package main

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"net/url"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/weirdata/weir/broker"
	"github.com/weirdata/weir/catalog"
	gossip "github.com/weirdata/weir/cluster"
	"go.yaml.in/yaml/v3"
)

// EnvConfig names the configuration file when --config is not given.
const EnvConfig = "WEIR_CONFIG"

// configCommands are the commands whose flags a configuration file sets;
// each may have a section of its own in the file.
var configCommands = []string{"server", "worker", "agent", "dev", "migrate"}

// configSkipped are flags a configuration file does not set: they are about
// one command line, not about a node (--server and --token are the client
// commands' and unused by the services).
var configSkipped = map[string]bool{"help": true, "config": true, "output": true, "quiet": true, "server": true, "token": true}

// configEnvAliases are the environment variables of list flags whose names
// predate the WEIR_<FLAG_NAME> rule (they hold several values).
var configEnvAliases = map[string]string{
	"disk-path":     "WEIR_DISK_PATHS",
	"command":       "WEIR_COMMANDS",
	"alert-webhook": "WEIR_ALERT_WEBHOOKS",
}

// secretSetting is a setting that is not a flag, so that it never shows in
// a process list: it comes from its environment variable or the file.
type secretSetting struct {
	key      string
	env      string
	commands []string           // the commands that read it
	check    func(string) error // the parser of the component that reads it, if any
	hint     string
}

var secretSettings = []secretSetting{
	{key: "admin-token", env: "WEIR_ADMIN_TOKEN", commands: []string{"server", "dev"}},
	{key: "gossip-key", env: gossip.EnvGossipKey, commands: []string{"server", "worker", "agent", "dev"},
		check: func(v string) error { _, err := gossip.ParseGossipKey(v); return err },
		hint:  "give 16, 24 or 32 random bytes in base64, the same on every node: `openssl rand -base64 32`"},
	{key: "federation-secret", env: EnvFederationSecret, commands: []string{"server", "dev"},
		check: func(v string) error { _, err := broker.ParseFederationSecrets(v); return err },
		hint:  "set the same random secret on every server of every region, such as `openssl rand -hex 32`"},
	{key: "alert-webhook-secret", env: "WEIR_ALERT_WEBHOOK_SECRET", commands: []string{"server", "dev"}},
}

// maskedFlags are flags whose values are secrets.
var maskedFlags = map[string]bool{}

// Sources of a setting, in the order they win.
const (
	SourceFlag    = "flag"
	SourceEnv     = "env"
	SourceFile    = "file"
	SourceDefault = "default"
)

// flagEnv is the environment variable of a flag: WEIR_<FLAG_NAME>.
func flagEnv(name string) string {
	if e, ok := configEnvAliases[name]; ok {
		return e
	}
	return "WEIR_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// configEntry is one key of the file and its value.
type configEntry struct {
	key   string
	line  int
	value *yaml.Node
}

// configFile is a parsed configuration file: top-level keys apply to every
// command that has them, a command's section overrides them for it.
type configFile struct {
	path     string
	top      map[string]configEntry
	sections map[string]map[string]configEntry
}

// configKeys lists, per configurable command, the keys the file may set
// for it: its flags and its secret settings.
func configKeys() map[string][]string {
	root := newRootCmd(NewMain(io.Discard, io.Discard))
	out := map[string][]string{}
	for _, name := range configCommands {
		c, _, err := root.Find([]string{name})
		if err != nil || c.Name() != name {
			continue
		}
		var keys []string
		visitConfigFlags(c, func(f *pflag.Flag) { keys = append(keys, f.Name) })
		for _, s := range secretSettings {
			if slices.Contains(s.commands, name) {
				keys = append(keys, s.key)
			}
		}
		sort.Strings(keys)
		out[name] = keys
	}
	return out
}

// visitConfigFlags calls fn for each flag of c (its own and inherited) that
// a configuration file may set, in name order.
func visitConfigFlags(c *cobra.Command, fn func(*pflag.Flag)) {
	seen := map[string]bool{}
	visit := func(f *pflag.Flag) {
		if !configSkipped[f.Name] && !seen[f.Name] {
			seen[f.Name] = true
			fn(f)
		}
	}
	c.LocalFlags().VisitAll(visit)
	c.InheritedFlags().VisitAll(visit)
}

// configErr is a usage error about the file, pointing at a line.
func (cf *configFile) errAt(line int, hint string, format string, args ...any) error {
	err := fmt.Errorf("config file %s, line %d: %s", cf.path, line, fmt.Sprintf(format, args...))
	if hint == "" {
		return usageErr(err)
	}
	return usageErr(withHint(err, "%s", hint))
}

// loadConfig reads and checks the configuration file at path.
func loadConfig(path string) (*configFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, usageErr(withHint(fmt.Errorf("read config file: %w", err), "check --config / %s (now %q)", EnvConfig, path))
	}
	cf := &configFile{path: path, top: map[string]configEntry{}, sections: map[string]map[string]configEntry{}}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, usageErr(withHint(fmt.Errorf("config file %s: %w", path, err), "the file must be YAML: one \"flag-name: value\" per line"))
	}
	if len(doc.Content) == 0 {
		return cf, nil // an empty file sets nothing
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, cf.errAt(root.Line, "write one \"flag-name: value\" per line, such as \"listen: 0.0.0.0:8080\"", "the file must be a mapping of keys to values, not a %s", kindName(root))
	}
	keys := configKeys()
	union := map[string]bool{}
	for _, ks := range keys {
		for _, k := range ks {
			union[k] = true
		}
	}
	entries, err := cf.entries(root)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if ks, ok := keys[e.key]; ok {
			if e.value.Kind != yaml.MappingNode {
				return nil, cf.errAt(e.line, fmt.Sprintf("write the keys of weir %s indented under \"%s:\"", e.key, e.key), "section %q must be a mapping of keys to values, not a %s", e.key, kindName(e.value))
			}
			sec, err := cf.entries(e.value)
			if err != nil {
				return nil, err
			}
			cf.sections[e.key] = map[string]configEntry{}
			for _, s := range sec {
				if !slices.Contains(ks, s.key) {
					return nil, cf.errAt(s.line, suggest(s.key, ks, fmt.Sprintf("see `weir %s --help` for its flags", e.key)), "key %q is not a setting of weir %s", s.key, e.key)
				}
				cf.sections[e.key][s.key] = s
			}
			continue
		}
		if !union[e.key] {
			cands := slices.Collect(func(yield func(string) bool) {
				for k := range union {
					if !yield(k) {
						return
					}
				}
			})
			cands = append(cands, configCommands...)
			return nil, cf.errAt(e.line, suggest(e.key, cands, "the keys are the flags of weir server, worker, agent, dev and migrate, without \"--\" (see `weir config print`)"), "unknown key %q", e.key)
		}
		cf.top[e.key] = e
	}
	return cf, nil
}

// entries returns the key-value pairs of a mapping, refusing keys that are
// not plain strings or that appear twice.
func (cf *configFile) entries(m *yaml.Node) ([]configEntry, error) {
	var out []configEntry
	seen := map[string]int{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.Tag == "!!merge" {
			return nil, cf.errAt(k.Line, "", "keys must be plain names, such as listen")
		}
		if first, dup := seen[k.Value]; dup {
			return nil, cf.errAt(k.Line, "keep one of them", "key %q is set twice (first on line %d)", k.Value, first)
		}
		seen[k.Value] = k.Line
		out = append(out, configEntry{key: k.Value, line: k.Line, value: v})
	}
	return out, nil
}

// lookup returns the file's entry for key as seen by command cmd.
func (cf *configFile) lookup(cmd, key string) (configEntry, bool) {
	if cf == nil {
		return configEntry{}, false
	}
	if e, ok := cf.sections[cmd][key]; ok {
		return e, true
	}
	e, ok := cf.top[key]
	return e, ok
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	case yaml.AliasNode:
		return "alias"
	}
	return "single value"
}

// setting is one effective setting of a command and where it came from.
type setting struct {
	Key    string `json:"key"`
	Value  any    `json:"value"` // string or []string, masked when secret
	Source string `json:"source"`
	Env    string `json:"env"`
}

// applyConfig completes cmd's flags from the environment (WEIR_<FLAG_NAME>)
// and then the file, for those not given on the command line, through the
// flags' own parsers; it sets secret settings from the file into their
// environment variables when unset and export is true. It returns every
// setting with its source.
func applyConfig(cmd *cobra.Command, cf *configFile, export bool) ([]setting, error) {
	var out []setting
	var firstErr error
	name := cmd.Name()
	fl := cmd.Flags()
	visitConfigFlags(cmd, func(f *pflag.Flag) {
		if firstErr != nil {
			return
		}
		s := setting{Key: f.Name, Source: SourceDefault, Env: flagEnv(f.Name)}
		_, list := f.Value.(pflag.SliceValue)
		switch {
		case f.Changed:
			s.Source = SourceFlag
		case os.Getenv(s.Env) != "":
			s.Source = SourceEnv
			// List flags read their variable when bound; a single value
			// goes through the flag's parser here.
			if !list {
				if err := fl.Set(f.Name, os.Getenv(s.Env)); err != nil {
					firstErr = usageErr(withHint(fmt.Errorf("bad %s %q: %s", s.Env, os.Getenv(s.Env), reason(f, err)),
						"fix or unset %s (the --%s flag takes the same values)", s.Env, f.Name))
					return
				}
			}
		default:
			if e, ok := cf.lookup(name, f.Name); ok {
				if err := cf.set(fl, f, e); err != nil {
					firstErr = err
					return
				}
				s.Source = SourceFile
			}
		}
		s.Value = shownValue(f)
		out = append(out, s)
	})
	if firstErr != nil {
		return nil, firstErr
	}
	for _, sec := range secretSettings {
		if !slices.Contains(sec.commands, name) {
			continue
		}
		s := setting{Key: sec.key, Source: SourceDefault, Env: sec.env, Value: ""}
		if os.Getenv(sec.env) != "" {
			s.Source, s.Value = SourceEnv, mask(os.Getenv(sec.env))
		} else if e, ok := cf.lookup(name, sec.key); ok {
			if e.value.Kind != yaml.ScalarNode || e.value.Tag == "!!null" || e.value.Value == "" {
				return nil, cf.errAt(e.line, "give the secret as one string", "key %q must be a non-empty single value", sec.key)
			}
			if sec.check != nil {
				if err := sec.check(e.value.Value); err != nil { // the message never holds the value
					return nil, cf.errAt(e.line, sec.hint, "bad value for key %q: %v", sec.key, err)
				}
			}
			// The components read the secret from its variable.
			if export {
				if err := os.Setenv(sec.env, e.value.Value); err != nil {
					return nil, fmt.Errorf("set %s: %w", sec.env, err)
				}
			}
			s.Source, s.Value = SourceFile, mask(e.value.Value)
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// set applies a file entry to flag f with the flag's own parser.
func (cf *configFile) set(fl *pflag.FlagSet, f *pflag.Flag, e configEntry) error {
	v := e.value
	sv, list := f.Value.(pflag.SliceValue)
	switch {
	case v.Kind == yaml.ScalarNode && v.Tag == "!!null":
		return cf.errAt(e.line, fmt.Sprintf("give a value, or remove the key for the default %q", f.DefValue), "key %q has no value", e.key)
	case v.Kind == yaml.ScalarNode:
		if err := fl.Set(f.Name, v.Value); err != nil {
			return cf.errAt(v.Line, "the value takes the same form as the --"+f.Name+" flag: "+f.Usage, "bad value %q for key %q: %s", v.Value, e.key, reason(f, err))
		}
		return nil
	case v.Kind == yaml.SequenceNode && list:
		vals := make([]string, 0, len(v.Content))
		for _, item := range v.Content {
			if item.Kind != yaml.ScalarNode || item.Tag == "!!null" {
				return cf.errAt(item.Line, "write one value per \"- \" line", "key %q: every item of the list must be a single value, not a %s", e.key, kindName(item))
			}
			vals = append(vals, item.Value)
		}
		if err := sv.Replace(vals); err != nil {
			return cf.errAt(v.Line, "", "bad value for key %q: %v", e.key, err)
		}
		f.Changed = true
		return nil
	case v.Kind == yaml.SequenceNode:
		return cf.errAt(v.Line, "give one value, such as "+e.key+": "+exampleValue(f), "key %q takes a single value, not a list", e.key)
	}
	hint := "give one value, such as " + e.key + ": " + exampleValue(f)
	if list {
		hint = "give a value or a list of values"
	}
	return cf.errAt(v.Line, hint, "key %q takes a %s, not a %s", e.key, typeName(f), kindName(v))
}

// reason is what is wrong with a value a flag's parser refused.
func reason(f *pflag.Flag, err error) string {
	var ne *strconv.NumError
	if errors.As(err, &ne) {
		return fmt.Sprintf("%v (want %s)", ne.Err, typeName(f))
	}
	msg := err.Error()
	// pflag prefixes its own message with the flag and value: keep the cause.
	if i := strings.LastIndex(msg, ": "); i >= 0 && strings.HasPrefix(msg, "invalid argument") {
		msg = msg[i+2:]
	}
	return fmt.Sprintf("%s (want %s)", msg, typeName(f))
}

func typeName(f *pflag.Flag) string {
	switch f.Value.Type() {
	case "int", "int64", "uint":
		return "an integer"
	case "float64":
		return "a number"
	case "duration":
		return "a duration such as 30s or 5m"
	case "bool":
		return "true or false"
	case "stringArray", "stringSlice":
		return "list of values"
	}
	return "a single value"
}

func exampleValue(f *pflag.Flag) string {
	if f.DefValue != "" && f.DefValue != "[]" {
		return f.DefValue
	}
	return "..."
}

// shownValue is a flag's value as printed by `weir config print`, masked
// when it holds a secret.
func shownValue(f *pflag.Flag) any {
	if sv, ok := f.Value.(pflag.SliceValue); ok {
		vals := sv.GetSlice()
		if vals == nil {
			vals = []string{}
		}
		out := make([]string, len(vals))
		for i, v := range vals {
			out[i] = maskSetting(f.Name, v)
		}
		return out
	}
	return maskSetting(f.Name, f.Value.String())
}

// maskSetting hides the secret parts of a value: tokens entirely, the
// password of a catalog DSN, credentials and query of a webhook URL.
func maskSetting(key, v string) string {
	switch {
	case v == "":
		return v
	case maskedFlags[key]:
		return mask(v)
	case key == "catalog":
		return catalog.RedactDSN(v)
	case key == "alert-webhook":
		if u, err := url.Parse(v); err == nil && u.Host != "" {
			if u.RawQuery != "" {
				u.RawQuery = "xxxxx"
			}
			return u.Redacted()
		}
		return mask(v)
	}
	return v
}

func mask(v string) string {
	if v == "" {
		return ""
	}
	return "********"
}

// suggest returns a hint naming the closest candidate to key, if one is
// close, followed by the general advice.
func suggest(key string, cands []string, advice string) string {
	best, bestD := "", 3
	if len(key) <= 4 {
		bestD = 2
	}
	for _, c := range cands {
		if d := editDistance(key, c); d < bestD || (d == bestD && best != "" && c < best) {
			best, bestD = c, d
		}
	}
	if best != "" && bestD < 3 {
		return fmt.Sprintf("did you mean %q? %s", best, strings.ToUpper(advice[:1])+advice[1:])
	}
	if strings.HasPrefix(key, "-") {
		return fmt.Sprintf("write keys without dashes in front, such as %q; %s", strings.TrimLeft(key, "-"), advice)
	}
	return advice
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// configPath is --config, or WEIR_CONFIG; "" when neither is given.
func configPath(cmd *cobra.Command) string {
	if f := cmd.Flags().Lookup("config"); f != nil && f.Value.String() != "" {
		return f.Value.String()
	}
	return os.Getenv(EnvConfig)
}

// resolveConfig loads the configuration file of cmd, if any, and applies
// it with the environment under cmd's flags; export sets the file's secrets
// into their environment variables, for the command about to run.
func resolveConfig(cmd *cobra.Command, export bool) ([]setting, string, error) {
	path := configPath(cmd)
	var cf *configFile
	if path != "" {
		var err error
		if cf, err = loadConfig(path); err != nil {
			return nil, path, err
		}
	}
	settings, err := applyConfig(cmd, cf, export)
	if err == nil && export && cf.holdsSecrets() {
		if st, serr := os.Stat(path); serr == nil && st.Mode().Perm()&0o077 != 0 {
			fmt.Fprintf(cmd.ErrOrStderr(), "Warning: config file %s holds secrets and is readable by others (mode %04o); chmod 600 it\n", path, st.Mode().Perm())
		}
	}
	return settings, path, err
}

// holdsSecrets reports whether the file sets a secret setting or a catalog
// DSN with a password.
func (cf *configFile) holdsSecrets() bool {
	if cf == nil {
		return false
	}
	for _, m := range append([]map[string]configEntry{cf.top}, slices.Collect(maps.Values(cf.sections))...) {
		for k, e := range m {
			if isSecretSetting(k) || (k == "catalog" && e.value.Kind == yaml.ScalarNode && catalog.RedactDSN(e.value.Value) != e.value.Value) {
				return true
			}
		}
	}
	return false
}

// bindConfigFlag adds --config to a configurable command and resolves its
// settings before it runs.
func bindConfigFlag(cmd *cobra.Command) {
	cmd.Flags().String("config", "", "YAML file of settings, one \"flag-name: value\" per line; flags and WEIR_* variables override it (env "+EnvConfig+")")
	run := cmd.PreRunE
	cmd.PreRunE = func(c *cobra.Command, args []string) error {
		if _, _, err := resolveConfig(c, true); err != nil {
			return err
		}
		if run != nil {
			return run(c, args)
		}
		return nil
	}
}

func newConfigCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Show the effective configuration of a service command",
		Args:  noArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	var path string
	print := &cobra.Command{
		Use:   "print [server|worker|agent|dev|migrate]",
		Short: "Print the effective settings of a command and where each comes from",
		Long: `Print the settings weir server (or worker, agent, dev, migrate) would run
with: every flag and secret setting, its value and where it came from
(flag, env, file or default), with secrets masked. Flags given on the
command line of the service win over WEIR_<FLAG_NAME> variables, which win
over the file (--config or WEIR_CONFIG), which wins over the defaults.

The YAML output (the default) is a configuration file: secret settings
are comments, and masked parts of values (xxxxx) must be filled in.

  weir config print server --config /etc/weir/weir.yaml
  WEIR_CONFIG=/etc/weir/weir.yaml weir config print worker -o json`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 || (len(args) == 1 && !slices.Contains(configCommands, args[0])) {
				return usageErr(withHint(fmt.Errorf("weir config print takes one of %s, got %q", strings.Join(configCommands, ", "), strings.Join(args, " ")),
					"such as `weir config print server`"))
			}
			return nil
		},
		ValidArgs: configCommands,
		RunE: func(cmd *cobra.Command, args []string) error {
			if g.output != "text" && g.output != "json" && g.output != "yaml" {
				return usageErr(withHint(fmt.Errorf("unknown output format %q", g.output), "use -o yaml (the default) or -o json"))
			}
			target := "server"
			if len(args) == 1 {
				target = args[0]
			}
			root := newRootCmd(NewMain(io.Discard, io.Discard))
			c, _, err := root.Find([]string{target})
			if err != nil {
				return err
			}
			cfgArgs := []string{}
			if path != "" {
				cfgArgs = append(cfgArgs, "--config", path)
			}
			if err := c.ParseFlags(cfgArgs); err != nil {
				return usageErr(err)
			}
			settings, file, err := resolveConfig(c, false)
			if err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(g.main.Stdout, struct {
					Command  string    `json:"command"`
					File     string    `json:"file"`
					Settings []setting `json:"settings"`
				}{target, file, settings})
			}
			return printConfigYAML(g.main.Stdout, target, file, settings)
		},
	}
	print.Flags().StringVar(&path, "config", "", "YAML configuration file (env "+EnvConfig+")")
	cmd.AddCommand(print)
	return cmd
}

// printConfigYAML prints settings as a configuration file, each value with
// its source as a comment.
func printConfigYAML(w io.Writer, target, file string, settings []setting) error {
	doc := &yaml.Node{Kind: yaml.MappingNode}
	from := "no file"
	if file != "" {
		from = "file " + file
	}
	doc.HeadComment = fmt.Sprintf("Effective settings of weir %s (%s); the comment says where each comes from.\nFlags win over WEIR_<FLAG_NAME> variables, which win over the file, which wins over the defaults.", target, from)
	var secrets []string
	for _, s := range settings {
		if isSecretSetting(s.Key) {
			// Secret settings stay comments: a masked value read back
			// would replace the secret.
			v := s.Value.(string)
			if v == "" {
				v = "(not set)"
			}
			secrets = append(secrets, fmt.Sprintf("%s: %s  # %s (%s)", s.Key, v, s.Source, s.Env))
			continue
		}
		k := &yaml.Node{Kind: yaml.ScalarNode, Value: s.Key}
		var v *yaml.Node
		switch val := s.Value.(type) {
		case []string:
			v = &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
			for _, x := range val {
				v.Content = append(v.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: x})
			}
		default:
			v = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: fmt.Sprint(val)}
			if n := shownTag(fmt.Sprint(val)); n != "" {
				v.Tag = n
			}
		}
		v.LineComment = s.Source + " (" + s.Env + ")"
		doc.Content = append(doc.Content, k, v)
	}
	if len(secrets) > 0 {
		doc.FootComment = "Secret settings, masked (set them in the file or their variable):\n" + strings.Join(secrets, "\n")
	}
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("encode YAML output: %w", err)
	}
	return enc.Close()
}

func isSecretSetting(key string) bool {
	return slices.ContainsFunc(secretSettings, func(s secretSetting) bool { return s.key == key })
}

// shownTag keeps numbers unquoted in the YAML output.
func shownTag(v string) string {
	if _, err := strconv.ParseInt(v, 10, 64); err == nil {
		return "!!int"
	}
	if _, err := strconv.ParseFloat(v, 64); err == nil && !strings.ContainsAny(v, "xXnN") {
		return "!!float"
	}
	return ""
}
