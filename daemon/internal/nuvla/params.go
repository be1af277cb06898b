package nuvla

import (
	"context"
	"fmt"
)

// Parameter is a deployment-parameter: a named value of a deployment,
// optionally scoped to a node (a service).
type Parameter struct {
	Name        string
	NodeID      string
	Value       *string
	Description string
}

// StrPtr returns a pointer to s, for Parameter.Value.
func StrPtr(s string) *string { return &s }

// CreateParameter creates the parameter if it does not exist yet and leaves
// an existing one untouched (so a value the app already set survives).
func (c *Client) CreateParameter(ctx context.Context, parent string, p Parameter, acl map[string]any) error {
	if err := c.addParameter(ctx, parent, p, acl); err != nil && !IsConflict(err) {
		return fmt.Errorf("create parameter %s of %s: %w", p.Name, parent, err)
	}
	return nil
}

func (c *Client) addParameter(ctx context.Context, parent string, p Parameter, acl map[string]any) error {
	body := map[string]any{"name": p.Name, "parent": parent}
	if p.NodeID != "" {
		body["node-id"] = p.NodeID
	}
	if p.Value != nil {
		body["value"] = *p.Value
	}
	if p.Description != "" {
		body["description"] = p.Description
	}
	if acl != nil {
		body["acl"] = acl
	}
	_, err := c.Add(ctx, "deployment-parameter", body)
	return err
}

// SetParameter sets the parameter's value, creating it when missing. Its id
// is computed, so no search is needed: a new parameter costs one request,
// an existing one two.
func (c *Client) SetParameter(ctx context.Context, parent string, p Parameter, acl map[string]any) error {
	val := ""
	if p.Value != nil {
		val = *p.Value
	}
	p.Value = &val
	err := c.addParameter(ctx, parent, p, acl)
	if IsConflict(err) {
		err = c.Edit(ctx, ParameterID(parent, p.NodeID, p.Name), map[string]any{"value": val}, nil)
	}
	if err != nil {
		return fmt.Errorf("set parameter %s of %s: %w", p.Name, parent, err)
	}
	return nil
}
