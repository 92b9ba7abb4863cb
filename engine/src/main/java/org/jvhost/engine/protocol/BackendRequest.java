package org.jvhost.engine.protocol;

/**
 * Back-end to front-end request codes (spec "Back-end message types"), sent on the channel the
 * front-end hands over with SET_BACKEND_REQ_FD. Only the ones jvhost sends are listed.
 */
public enum BackendRequest {
    /**
     * "When VHOST_USER_PROTOCOL_F_CONFIG is negotiated, this message is sent by the back-end to notify
     * the front-end that the device's config space changed." No payload.
     */
    CONFIG_CHANGE_MSG(2);

    private final int code;

    BackendRequest(int code) {
        this.code = code;
    }

    /** The wire code. */
    public int code() {
        return code;
    }
}
